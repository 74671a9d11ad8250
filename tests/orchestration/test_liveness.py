"""A run whose process died never blocks the next one, whatever launched it.

Launched runs (the UI, a backfill, a sensor, the schedule) go through the instance's run
launcher and are watched by Dagster's run monitoring; runs that the project's commands execute
in process are failed by the next command (tests/orchestration/test_headless.py).
"""

import json
import logging
import os
import signal
import time
from pathlib import Path

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

from assets.pools import GPU_POOL
from orchestration.instance import SETTINGS_FILE
from orchestration.liveness import HOST_TAG, PID_TAG, STARTED_TAG, is_dead, process_tags
from resources.corpus.sample import SampleSpec, iter_documents
from resources.processes import process_alive
from resources.settings import PROJECT_ROOT
from tests.conftest import assert_same_index

LOG = logging.getLogger("run-monitoring")


def _instance(home: Path, free_slots_after: int) -> DagsterInstance:
    home.mkdir(parents=True)
    settings = SETTINGS_FILE.read_text()
    key = "free_slots_after_run_end_seconds"
    settings = settings.replace(f"{key}: 15", f"{key}: {free_slots_after}")
    (home / "dagster.yaml").write_text(settings)
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
    return instance


def test_a_run_is_dead_when_its_process_is_gone_or_its_pid_was_reused(tmp_path):
    instance = _instance(tmp_path / "home", 15)
    mine = instance.add_run(DagsterRun(job_name="j", run_id="mine", tags=process_tags()))
    assert is_dead(instance, mine) is None
    gone = {**process_tags(), PID_TAG: "999999999"}
    assert "process 999999999" in is_dead(
        instance, instance.add_run(DagsterRun(job_name="j", run_id="gone", tags=gone))
    )
    reused = {**process_tags(), STARTED_TAG: "1000.0"}  # this pid, but a process of 1970
    assert "newer process" in is_dead(
        instance, instance.add_run(DagsterRun(job_name="j", run_id="reused", tags=reused))
    )
    elsewhere = {**gone, HOST_TAG: "another-host"}  # nothing this host can check
    assert (
        is_dead(
            instance, instance.add_run(DagsterRun(job_name="j", run_id="other", tags=elsewhere))
        )
        is None
    )
    assert instance.run_launcher.check_run_worker_health(mine).status == WorkerStatus.RUNNING


def _corpus(folder: Path) -> str:
    docs = list(iter_documents(SampleSpec(docs=24, seed=3, median_tokens=80, max_tokens=400)))
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return str(folder)


def _configure(monkeypatch, root: Path, corpus: str, server, collection: str) -> None:
    settings = {
        "CORPUS_PATH": corpus, "SHARD_SIZE": "8", "INDEXER_DATA_DIR": str(root / "data"),
        "EMBEDDING_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "WEAVIATE_MODE": "custom",
        "WEAVIATE_URL": f"http://127.0.0.1:{server.http_port}",
        "WEAVIATE_GRPC_PORT": str(server.grpc_port), "WEAVIATE_COLLECTION": collection,
        "WEAVIATE_API_KEY": server.api_key,
    }  # fmt: skip
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.5)


def test_a_launched_run_killed_inside_embedding_is_failed_and_the_next_one_runs(
    tmp_path, monkeypatch, weaviate_server, two_collections
):
    from orchestration.definitions import build_definitions

    corpus = _corpus(tmp_path / "corpus")
    reference, launched = two_collections

    # The uninterrupted state, in process.
    _configure(monkeypatch, tmp_path / "reference", corpus, weaviate_server, reference)
    defs = build_definitions()
    instance = _instance(tmp_path / "reference-home", 15)
    keys = (
        defs.resolve_job_def("register_shards")
        .execute_in_process(instance=instance)
        .output_for_node("register_corpus_shards")
    )
    assert keys == ["a-s00000", "a-s00001", "a-s00002"]
    shards = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    assert (
        defs.resolve_job_def("index_shards")
        .execute_in_process(instance=instance, tags=shards)
        .success
    )

    # The same shards in runs launched the way the UI, backfills and sensors launch them.
    _configure(monkeypatch, tmp_path / "launched", corpus, weaviate_server, launched)
    marker = tmp_path / "stopped-worker.pids"
    monkeypatch.setenv("STOP_ONCE_INSIDE_EMBEDDING", str(marker))
    defs = build_definitions()
    instance = _instance(tmp_path / "home", free_slots_after=1)
    defs.resolve_job_def("register_shards").execute_in_process(instance=instance)
    job = defs.resolve_job_def("index_shards")
    target = ModuleTarget(
        module_name="tests.orchestration.killable_definitions", attribute="defs",
        working_directory=str(PROJECT_ROOT), location_name="killable",
    )  # fmt: skip

    def launch(workspace: WorkspaceProcessContext) -> DagsterRun:
        context = workspace.create_request_context()
        location = context.get_code_location("killable")
        remote = location.get_repository("__repository__").get_full_job("index_shards")
        run = instance.create_run_for_job(
            job, remote_job_origin=remote.get_remote_origin(),
            job_code_origin=remote.get_python_origin(), tags=shards,
        )  # fmt: skip
        instance.launch_run(run.run_id, context)
        return run

    with WorkspaceProcessContext(instance, target) as workspace:
        first = launch(workspace)
        _wait_for(marker.exists, 300, "the run worker to reach the embedding")
        # The machine goes: the run's worker and the code server that started it, at once.
        for pid in reversed([int(pid) for pid in marker.read_text().split()]):
            os.kill(pid, signal.SIGKILL)
        worker = int(marker.read_text().split()[0])
        _wait_for(lambda: not process_alive(worker), 30, "the killed worker to go")
        assert instance.get_run_by_id(first.run_id).status == DagsterRunStatus.STARTED
        claimed = instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots
        assert [slot.run_id for slot in claimed] == [first.run_id]

    # What `dagster dev`'s daemon does next: one pass of run monitoring, one of slot freeing.
    with WorkspaceProcessContext(instance, target) as workspace:
        list(execute_run_monitoring_iteration(workspace, LOG))
        failed = instance.get_run_by_id(first.run_id)
        assert failed.status == DagsterRunStatus.FAILURE
        messages = [entry.message for entry in instance.all_logs(first.run_id)]
        assert any(f"its process {worker} on " in message for message in messages)
        time.sleep(1.5)  # free_slots_after_run_end_seconds
        list(execute_concurrency_slots_iteration(workspace, LOG))
        assert not instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots

        second = launch(workspace)
        _wait_for(lambda: instance.get_run_by_id(second.run_id).is_finished, 300, "the rerun")
        assert instance.get_run_by_id(second.run_id).status == DagsterRunStatus.SUCCESS

    assert assert_same_index(weaviate_server, reference, launched) >= 24
