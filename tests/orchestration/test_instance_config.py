"""The project's dagster.yaml: what `make ui` and the demo give Dagster."""

import shutil
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

ROOT = Path(__file__).resolve().parents[2]


def test_dagster_yaml_sets_monitoring_retries_and_the_gpu_pool(tmp_path):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path)))
    # A killed run must give its GPU slot back, or every later run waits forever.
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    # Run retries on, but not for step failures that the assets' RetryPolicy already retries.
    assert instance.run_retries_enabled
    assert instance.run_retries_retry_on_asset_or_op_failure is False
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
