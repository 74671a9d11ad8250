"""Runs whose process died: recognised, marked failed, their pool slots given back.

A run killed with its process (`kill -9`, a lost machine, the OOM killer) stays STARTED in the
Dagster instance and keeps its `gpu` pool slot, so every later run waits. Dagster's run
monitoring fails such runs and frees their slots, but only for run launchers that can check a
run's worker, and the local `DefaultRunLauncher` cannot. `LocalRunLauncher` adds that check;
everything else (when to check, failing the run, freeing slots after
`free_slots_after_run_end_seconds`) stays Dagster's. Runs started in process by this project's
commands (`make run`, `weaviate-indexer index`) carry their process in tags, and those commands
fail dead runs themselves before they start, since no daemon may be running.

A run's process is known from those tags or, for launched runs, from the event Dagster's run
worker records first ("Started process for run (pid: N)"). It counts as dead when no process
has that pid on this host, or the one that has it started after the run did (the pid was
reused). A run whose process this host cannot see (another host's, a pod's) is left alone.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultRunLauncher,
    RunsFilter,
)
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

from resources.processes import process_alive, process_started

HOST_TAG = "weaviate-indexer/host"
PID_TAG = "weaviate-indexer/pid"
STARTED_TAG = "weaviate-indexer/process-started"
_WORKER_STARTED = re.compile(r"Started process for run \(pid: (\d+)\)")
# A process that started this long after its run's first event is another one with its pid.
_CLOCK_SLACK_SECONDS = 5.0
_IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]

logger = logging.getLogger(__name__)


def process_tags() -> dict[str, str]:
    """Tags for a run this process executes itself (in process)."""
    pid = os.getpid()
    started = process_started(pid)
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(pid)}
    if started is not None:
        tags[STARTED_TAG] = f"{started:.2f}"
    return tags


@dataclass(frozen=True)
class RunProcess:
    pid: int
    started_before: float  # the process must have started by then to be the run's


def run_process(instance: DagsterInstance, run: DagsterRun) -> RunProcess | None:
    """The process that executes `run`, if it is one of this host's."""
    tags = run.tags
    if PID_TAG in tags:
        if tags.get(HOST_TAG) != socket.gethostname():
            return None
        started = float(tags.get(STARTED_TAG, "inf"))
        return RunProcess(int(tags[PID_TAG]), started + _CLOCK_SLACK_SECONDS)
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=20
    ).records
    for record in records:
        match = _WORKER_STARTED.search(record.event_log_entry.message or "")
        if match:
            return RunProcess(int(match.group(1)), record.timestamp + _CLOCK_SLACK_SECONDS)
    return None


def is_dead(instance: DagsterInstance, run: DagsterRun) -> str | None:
    """Why `run`'s process is known to be gone, or None (it runs, or cannot be seen here)."""
    process = run_process(instance, run)
    if process is None:
        return None
    if not process_alive(process.pid):
        return f"its process {process.pid} on {socket.gethostname()} is gone"
    started = process_started(process.pid)
    if started is not None and started > process.started_before:
        return f"its process {process.pid} is gone (the pid now belongs to a newer process)"
    return None


def fail_dead_runs(
    instance: DagsterInstance, log: Callable[[str], None] = logger.info
) -> list[str]:
    """Mark every in-progress run whose process is gone as failed and free its pool slots at
    once; returns their ids. For commands that run without Dagster's daemon."""
    failed = []
    for run in instance.get_runs(filters=RunsFilter(statuses=_IN_PROGRESS)):
        reason = is_dead(instance, run)
        if reason is None:
            continue
        instance.report_run_failed(run, f"Run {run.run_id} failed: {reason}.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log(f"run {run.run_id[:8]} ({run.job_name}) was left running by a dead process: {reason}; "
            "marked failed and its pool slots freed")  # fmt: skip
        failed.append(run.run_id)
    return failed


class LocalRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher, with the run-worker check that run monitoring needs."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        reason = is_dead(self._instance, run)
        if reason is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, reason)
