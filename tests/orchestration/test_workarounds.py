"""Waiting for the GPU pool: asleep between checks, and said at INFO with who holds it."""

import shutil
import threading
import time

from dagster import DagsterInstance, DagsterRun, asset, materialize
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.instance.ref import InstanceRef

from assets.pools import GPU_POOL
from orchestration.instance import SETTINGS_FILE


def _instance(tmp_path) -> DagsterInstance:
    shutil.copy(SETTINGS_FILE, tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path)))
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
    return instance


def test_a_blocked_claim_is_checked_again_later_not_at_once(tmp_path):
    instance = _instance(tmp_path)
    instance.event_log_storage.claim_concurrency_slot(GPU_POOL, "other-run", "embeddings")
    run = instance.add_run(DagsterRun(job_name="index_shards", run_id="waiting-run"))
    with InstanceConcurrencyContext(instance, run) as context:
        assert not context.claim(GPU_POOL, "embeddings")
        # Dagster's own backoff says when to look again; the executor sleeps until then.
        assert context.interval_to_next_pending_claim_check() > 0


def test_a_step_waiting_for_the_gpu_pool_says_who_holds_it(tmp_path):
    instance = _instance(tmp_path)
    instance.event_log_storage.claim_concurrency_slot(GPU_POOL, "holder-run-id", "embeddings")

    @asset(pool=GPU_POOL)
    def on_gpu() -> int:
        return 1

    def release_once_waiting() -> None:
        while not any(
            "waits for pool gpu" in (entry.user_message or "")
            for run in instance.get_runs()
            for entry in instance.all_logs(run.run_id)
        ):
            time.sleep(0.2)
        instance.event_log_storage.free_concurrency_slots_for_run("holder-run-id")

    releaser = threading.Thread(target=release_once_waiting, daemon=True)
    releaser.start()
    result = materialize([on_gpu], instance=instance)
    releaser.join(timeout=60)
    assert result.success
    messages = [(entry.level, entry.user_message) for entry in instance.all_logs(result.run_id)]
    assert (20, "step on_gpu waits for pool gpu (1 of 1 slot(s) taken: run holder-r step "
                "embeddings)") in messages  # fmt: skip
