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


def test_the_runs_at_once_are_this_machines_and_a_users_edit_is_kept(tmp_path, monkeypatch):
    from orchestration.instance import prepare_instance, runs_at_once, settings_for
    from resources.capacity import Machine, concurrent_runs

    big = Machine(cpus=16, gpus=1, memory_bytes=125 * 2**30)
    (tmp_path / "dagster.yaml").write_text(settings_for(big))
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path))) as instance:
        # What the run queue's daemon reads (`get_concurrency_config`): a backfill starts as many.
        assert runs_at_once(instance) == 4

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    edited = (tmp_path / "dagster.yaml").read_text().replace("runs: 4", "runs: 7")
    (tmp_path / "dagster.yaml").write_text(edited)
    prepare_instance()
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path))) as instance:
        assert runs_at_once(instance) == 7

    # Settings from before the number existed are replaced by this machine's.
    shutil.copy(SETTINGS_FILE, tmp_path / "dagster.yaml")
    text = (tmp_path / "dagster.yaml").read_text()
    old = text.replace("  runs:\n    max_concurrent_runs: 4\n", "")
    assert "max_concurrent_runs" not in old
    (tmp_path / "dagster.yaml").write_text(old)
    prepare_instance()
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path))) as instance:
        assert runs_at_once(instance) == concurrent_runs(Machine.this())
