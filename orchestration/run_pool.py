"""Runs of `index_shards` in worker processes, several at once: how the `index` command keeps
the GPU, the chunking cores and Weaviate busy together.

A run's stages take turns; runs executed one after another leave the GPU idle while Weaviate
ingests and Weaviate idle while the GPU embeds. The pool runs as many at once as the instance's
run queue would start for a UI backfill (`instance.runs_at_once`), and they drift out of step.
Its workers live for the whole command, so each loads the model once, not once per run, and
each executes its runs in process (`execute_in_process`) on the same instance as the UI, so the
runs and their metadata appear there.

Every worker runs in a session of its own: a terminal's Ctrl-C reaches only the command, which
decides what the workers do (`RunPool.stop`). It tells a worker to stop with SIGUSR1, not
SIGINT: Dagster retries a step interrupted by SIGINT or SIGTERM under its retry policy (right
for a preempted pod, wrong for a user who asked to stop). The worker raises `Stopped` where it
stands, which neither Dagster's retry policy nor the pipeline's own error handling takes for a
failure worth retrying, so its run ends failed (never left STARTED) and is reported.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.liveness import process_tags

# Step events go to the Dagster instance (and the UI); the terminal gets warnings and progress.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Nothing on the console: the caller says what the run logged (`headless.register`).
SILENT = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
TRIGGER_TAG = "indexer/trigger"
_PR_SET_PDEATHSIG = 1
# How long a worker told to stop may take to leave its run and exit before it is killed.
STOP_SECONDS = 120.0
# What the command adds up, by the asset and metadata name each comes from.
COUNTED = {
    ("corpus_shard", "documents"): "documents",
    ("chunks", "chunks"): "chunks",
    ("chunks", "tokens"): "tokens",
    ("embeddings", "tokens"): "tokens_embedded",
    ("weaviate_index", "objects"): "objects",
}


@dataclass
class RunOutcome:
    """One run over a group of shards, as the command reports it."""

    shards: list[str]
    run_id: str | None  # None: the run never started (its worker died first)
    success: bool
    numbers: dict[str, dict[str, int]] = field(default_factory=dict)  # shard -> counts
    error: str = ""  # the first line of its first step failure, if any


def execute_group(job, instance: DagsterInstance, shards: list[str]) -> RunOutcome:
    """One run of `job` over consecutive partitions `shards`, in this process."""
    tags = {
        ASSET_PARTITION_RANGE_START_TAG: shards[0],
        ASSET_PARTITION_RANGE_END_TAG: shards[-1],
        TRIGGER_TAG: "command",
        **process_tags(),
    }
    result = job.execute_in_process(
        instance=instance, tags=tags, raise_on_error=False, run_config=QUIET
    )
    return RunOutcome(
        shards, result.run_id, result.success, _shard_numbers(result), first_failure(result)
    )


def first_failure(result) -> str:
    """The first line of what the run's first failed step said (a `Failure`'s description, or
    the error's message)."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            said = data.user_failure_data.description if data.user_failure_data else None
            if not said and data.error:
                said = data.error.message
            return (said or "").strip().split("\n")[0]
    return ""


def _shard_numbers(result) -> dict[str, dict[str, int]]:
    """shard -> what `COUNTED` names, from the run's materializations; vectors a shard reused
    were embedded by an earlier run, so their tokens are not this run's."""
    numbers: dict[str, dict[str, int]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        asset, metadata = materialization.asset_key.path[-1], materialization.metadata
        reused = getattr(metadata.get("reused_checkpoint"), "value", False)
        for (source, name), counted in COUNTED.items():
            value = metadata.get(name)
            if source == asset and value is not None and materialization.partition:
                amount = 0 if reused else int(value.value)
                numbers.setdefault(materialization.partition, {})[counted] = amount
    return numbers


def _die_with(parent: int) -> None:
    """A worker must not outlive the command: killed with it (SIGKILL, a lost machine), it would
    go on unseen with a run that the next command could not fail. Linux only (`prctl`)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before that took effect
        os._exit(1)


class Stopped(BaseException):
    """Raised in a worker where it stands when the command stops: like KeyboardInterrupt, no
    `except Exception` retries it, and Dagster fails the step with it."""

    def __init__(self) -> None:
        super().__init__("stopped: the command was interrupted")


def _stop_here(signum: int, frame: object) -> None:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # once
    raise Stopped()


def _serve(tasks, results, slot: int, parent: int, initializer) -> None:
    """A worker: runs the groups it is given until it is given None."""
    os.setsid()
    _die_with(parent)
    signal.signal(signal.SIGUSR1, _stop_here)
    if initializer is not None:
        initializer()
    try:
        from orchestration.definitions import defs

        with DagsterInstance.get() as instance:
            job = defs.resolve_job_def("index_shards")
            while (shards := tasks.get()) is not None:
                results.put((slot, execute_group(job, instance, shards)))
    except Stopped:  # told to stop outside a run: nothing of its own to end
        return


class _Worker:
    def __init__(self, context, results, slot: int, initializer):
        self.tasks = context.SimpleQueue()
        self.process = context.Process(
            target=_serve,
            args=(self.tasks, results, slot, os.getpid(), initializer),
            name=f"index-worker-{slot}",
        )
        self.process.start()
        self.shards: list[str] | None = None  # the group it runs now

    def give(self, shards: list[str]) -> None:
        self.shards = shards
        self.tasks.put(shards)

    def stop(self) -> None:
        if self.shards is not None and self.process.pid:
            _signal(self.process.pid, signal.SIGUSR1)

    def kill(self) -> None:
        if self.process.pid:
            _signal(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        """Let it end its run, then exit; killed if it does not within `STOP_SECONDS`."""
        if self.process.is_alive():
            self.tasks.put(None)
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.kill()
            self.process.join()


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


class RunPool:
    """`size` workers running groups of shards until all ran or `stop` was called."""

    # Called in each worker as it starts (picklable): where tests put their fault injection.
    worker_initializer: Callable[[], None] | None = None

    def __init__(self, size: int):
        self.size = size
        self.stopping = False
        self._workers: list[_Worker] = []

    def run(self, groups: list[list[str]], report: Callable[[RunOutcome], None]) -> None:
        """Runs every group (fewer after `stop`), reporting each run as it ends."""
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        pending = deque(groups)

        def start(slot: int) -> _Worker:
            worker = _Worker(context, results, slot, self.worker_initializer)
            worker.give(pending.popleft())
            return worker

        self._workers = [start(slot) for slot in range(min(self.size, len(groups)))]
        try:
            while any(worker.shards is not None for worker in self._workers):
                try:
                    slot, outcome = results.get(timeout=1.0)
                except queue.Empty:
                    # A worker that died inside a run (killed, out of memory) fails its group;
                    # a new one takes its place for the groups still to run.
                    for slot, worker in enumerate(self._workers):
                        if worker.shards is not None and not worker.process.is_alive():
                            report(RunOutcome(worker.shards, None, False))
                            worker.shards = None
                            if pending and not self.stopping:
                                self._workers[slot] = start(slot)
                    continue
                worker = self._workers[slot]
                worker.shards = None
                report(outcome)
                if pending and not self.stopping:
                    worker.give(pending.popleft())
        finally:
            for worker in self._workers:
                worker.close()

    def stop(self) -> None:
        """No group starts any more; the runs in progress are interrupted and end failed."""
        self.stopping = True
        for worker in self._workers:
            worker.stop()

    def kill(self) -> None:
        for worker in self._workers:
            worker.kill()
