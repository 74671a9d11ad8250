"""The Dagster instance the project's runs go through (DAGSTER_HOME), made ready for this host.

`make ui`, `make run` and the command line prepare it the same way: the project's
`deploy/local/dagster.yaml` (run monitoring, retries, pools) copied in with this machine's
number of runs at once (`resources/capacity.py`), and the `gpu` pool given one slot per GPU, so
a backfill keeps every GPU busy and no two steps share one (each step leases its own:
`resources/embedding/lease.py`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dagster import DagsterInstance

from assets.pools import GPU_POOL
from resources import settings
from resources.capacity import Machine, concurrent_runs
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
    slots = settings.gpu_pool_slots()
    if slots is not None:
        return slots
    import torch

    return max(1, torch.cuda.device_count())


_RUNS_SETTING = re.compile(r"max_concurrent_runs: \d+")


def settings_for(machine: Machine) -> str:
    """The project's instance settings with `machine`'s number of runs at once."""
    runs = f"max_concurrent_runs: {concurrent_runs(machine)}"
    return _RUNS_SETTING.sub(runs, SETTINGS_FILE.read_text(), count=1)


def prepare_instance(replace_settings: bool = False) -> Path:
    """DAGSTER_HOME with the project's settings for this machine and the GPU pool's slots;
    returns the folder. Settings already there are kept (a user may have edited them) unless
    `replace_settings`, or unless they predate the number of runs at once."""
    home = dagster_home()
    settings = home / "dagster.yaml"
    if replace_settings or not _RUNS_SETTING.search(_read(settings)):
        settings.write_text(settings_for(Machine.this()))
    with DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, gpu_pool_slots())
    return home


def runs_at_once(instance: DagsterInstance) -> int:
    """The instance's `concurrency: runs: max_concurrent_runs`: what a backfill's run queue
    starts at once, and the `index` command's number of workers."""
    return instance.get_concurrency_config().run_queue_config.max_concurrent_runs


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""
