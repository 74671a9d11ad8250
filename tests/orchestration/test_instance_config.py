"""The project's instance settings: what `make ui`, `make run` and the commands give Dagster."""

import shutil

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from orchestration.instance import SETTINGS_FILE


def test_dagster_yaml_sets_monitoring_retries_and_the_gpu_pool(tmp_path):
    shutil.copy(SETTINGS_FILE, tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path)))
    # A killed run must give its GPU slot back, or every later run waits forever.
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    # Run retries on, but not for step failures that the assets' RetryPolicy already retries.
    assert instance.run_retries_enabled
    assert instance.run_retries_retry_on_asset_or_op_failure is False
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_a_killed_run_is_failed_by_run_monitoring_within_seconds(tmp_path):
    from orchestration.liveness import LocalRunLauncher

    shutil.copy(SETTINGS_FILE, tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path)))
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health
    assert instance.run_monitoring_settings["poll_interval_seconds"] == 15
    assert instance.run_monitoring_max_resume_run_attempts == 0


def test_step_retries_come_15_45_and_105_seconds_after_the_failure():
    """What the README's failure table says, from Dagster's own delay computation."""
    from dagster._core.definitions.policy import calculate_delay

    from assets.retries import TRANSIENT

    delays = [
        calculate_delay(attempt, TRANSIENT.backoff, None, TRANSIENT.delay)
        for attempt in range(1, TRANSIENT.max_retries + 1)
    ]
    assert delays == [15, 45, 105]
