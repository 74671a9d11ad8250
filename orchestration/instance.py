"""The Dagster instance the project's runs go through (DAGSTER_HOME), made ready for this host.

`make ui`, `make run` and the command line prepare it the same way: the project's
`deploy/local/dagster.yaml` (run monitoring, retries, pools) copied in, and the `gpu` pool given
one slot per GPU of this machine, so a backfill keeps every GPU busy and no two steps share one
(each step leases its own: `resources/embedding/lease.py`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from assets.pools import GPU_POOL
from resources.settings import PROJECT_ROOT

# The instance settings every local entry point gives DAGSTER_HOME. Not in the project's top
# folder, where `dagster dev` would find it and warn that it is not the one in use.
SETTINGS_FILE = PROJECT_ROOT / "deploy" / "local" / "dagster.yaml"


def dagster_home() -> Path:
    """DAGSTER_HOME, by default `.dagster_home` in the project; set for this process."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    return home


def gpu_pool_slots() -> int:
    """GPU_POOL_SLOTS, else one per visible GPU (at least one: the CPU runs one step too)."""
    if os.environ.get("GPU_POOL_SLOTS"):
        return int(os.environ["GPU_POOL_SLOTS"])
    import torch

    return max(1, torch.cuda.device_count())


def prepare_instance(replace_settings: bool = False) -> Path:
    """DAGSTER_HOME with the project's settings (kept if there, unless `replace_settings`) and
    the GPU pool's slots; returns the folder."""
    from dagster import DagsterInstance

    home = dagster_home()
    settings = home / "dagster.yaml"
    if replace_settings or not settings.exists():
        shutil.copy(SETTINGS_FILE, settings)
    with DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, gpu_pool_slots())
    return home
