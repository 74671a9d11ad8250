"""The repairs to Dagster's internals: each repairs its behaviour, none is applied by importing an
asset, and one whose internal is gone is skipped with a warning instead of breaking the load."""

import logging
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, asset, materialize
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_representation.external_data import RepositorySnap

from assets.pools import GPU_POOL
from orchestration import workarounds
from orchestration.instance import SETTINGS_FILE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def instance(tmp_path) -> DagsterInstance:
    workarounds.apply()
    shutil.copy(SETTINGS_FILE, tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path)))
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
    return instance


def test_a_blocked_claim_is_checked_again_later_not_at_once(instance):
    instance.event_log_storage.claim_concurrency_slot(GPU_POOL, "other-run", "embeddings")
    run = instance.add_run(DagsterRun(job_name="index_shards", run_id="waiting-run"))
    with InstanceConcurrencyContext(instance, run) as context:
        assert not context.claim(GPU_POOL, "embeddings")
        # Dagster's own backoff says when to look again; the executor sleeps until then.
        assert context.interval_to_next_pending_claim_check() > 0


def test_a_step_waiting_for_the_gpu_pool_says_who_holds_it(instance):
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
    workarounds.apply()  # a second time: still one line per blocked event
    result = materialize([on_gpu], instance=instance)
    releaser.join(timeout=60)
    assert result.success
    messages = [(entry.level, entry.user_message) for entry in instance.all_logs(result.run_id)]
    waits = [message for message in messages if "waits for pool" in message[1]]
    assert waits[0] == (20, "step on_gpu waits for pool gpu (1 of 1 slot(s) taken: run holder-r "
                            "step embeddings)")  # fmt: skip
    assert len(waits) == len(set(waits))


def test_loading_the_definitions_warns_nothing_dagster_raises_on_its_own():
    from orchestration.definitions import build_definitions

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # A copy of each sensor and the snapshot of each schedule, as the webserver makes them.
        RepositorySnap.from_def(build_definitions().get_repository_def())


def test_importing_the_assets_repairs_nothing_and_the_definitions_repair_it_all():
    probe = (
        "from dagster._core.execution.plan.instance_concurrency_context import "
        "InstanceConcurrencyContext as C\n"
        "import assets.embeddings, assets.index\n"
        "print(C.interval_to_next_pending_claim_check.__module__)\n"
        "import orchestration.definitions\n"
        "print(C.interval_to_next_pending_claim_check.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    assert done.stdout.split() == [
        "dagster._core.execution.plan.instance_concurrency_context",
        "orchestration.workarounds",
    ]


def test_a_repair_whose_internal_is_gone_is_skipped_with_a_warning(monkeypatch, caplog):
    monkeypatch.delattr(InstanceConcurrencyContext, "interval_to_next_pending_claim_check")
    monkeypatch.delattr(ActiveExecution, "concurrency_event_iterator")
    with caplog.at_level(logging.WARNING, logger=workarounds.__name__):
        skipped = workarounds.apply()
    assert skipped == [
        "the pool wait sleeps between checks",
        "a step waiting for a pool says who holds it",
    ]
    assert [record.getMessage() for record in caplog.records] == [
        f"this Dagster's internals changed; not repaired: {name}" for name in skipped
    ]
