"""Indexing a corpus from a terminal: the runs a UI backfill launches, through the same Dagster
instance and definitions, several at once, until the index answers searches.

Each run covers up to `SHARDS_PER_RUN` shards, like a backfill's, and as many run at once as the
instance's run queue starts for a backfill (`run_pool.RunPool`); each shard is still its own
checkpoint. Only shards whose indexed content differs from the registered corpus are run (unless
told to run all), so a command killed at any point finishes the job when it is run again: the
dead runs it left behind are failed and their pool slots freed first (`liveness.fail_dead_runs`).
The first Ctrl-C (or SIGTERM) stops it cleanly (`interrupts.Interrupts`).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import DagsterExecutionInterruptedError, DagsterInstance, Failure

from assets.partitions import shard_partitions
from assets.shards import SHARDS_PER_RUN
from orchestration.changes import compare_shards
from orchestration.indexed import indexed_hashes
from orchestration.instance import runs_at_once
from orchestration.interrupts import Interrupts
from orchestration.liveness import fail_dead_runs, process_tags
from orchestration.rates import stage_rates
from orchestration.run_pool import QUIET, SILENT, TRIGGER_TAG, RunOutcome, RunPool, first_failure
from resources.corpus.manifest import load_manifest
from resources.weaviate.searchable import wait_until_searchable

# How a step says that Weaviate cannot take writes at all (resources/weaviate: a cluster that
# lost its quorum, a server that cannot be reached): every later run would fail the same way
# after minutes of retries, so the command stops instead of trying each in turn.
WEAVIATE_DOWN = ("Weaviate cluster:", "cannot reach Weaviate")


@dataclass
class IndexSummary:
    """What a command's runs did, shard by shard."""

    shards: int = 0  # registered
    to_index: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # registered, input gone
    removed: bool = False  # the missing shards' objects and partitions were deleted
    indexed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # their run ended before they were indexed
    totals: dict[str, int] = field(default_factory=dict)  # documents, chunks, objects, tokens
    run_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the runs, first start to last end
    searchable_after: float | None = None  # command start to an empty vector queue
    rates: dict[str, float] = field(default_factory=dict)  # per stage, see `rates`
    stopped_by: int | None = None  # the signal that stopped the command, if one did
    halted_by: str = ""  # a failure that stopped it: Weaviate cannot take writes

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped_by and not self.halted_by

    @property
    def not_run(self) -> list[str]:
        done = set(self.indexed) | set(self.failed)
        return [key for key in self.to_index if key not in done]

    def add(self, outcome: RunOutcome) -> None:
        """A shard is indexed when its run recorded it in Weaviate, also in a run that failed
        later; its numbers count then only."""
        if outcome.run_id:
            self.run_ids.append(outcome.run_id)
        for key in outcome.shards:
            numbers = outcome.numbers.get(key, {})
            if "objects" not in numbers:
                self.failed.append(key)
                continue
            self.indexed.append(key)
            for name, value in numbers.items():
                self.totals[name] = self.totals.get(name, 0) + value


def shards_to_index(
    instance: DagsterInstance, data_dir: str, every: bool
) -> tuple[list[str], list[str], int]:
    """The registered shards whose indexed content is not their current one (all of them with
    `every`) in partition order, the registered shards whose input is gone, and how many
    registered shards the corpus has."""
    current = {key: spec.content_hash for key, spec in load_manifest(data_dir).items()}
    partitions = instance.get_dynamic_partitions(shard_partitions.name)
    registered = [key for key in partitions if key in current]
    missing = [key for key in partitions if key not in current]
    if every:
        return registered, missing, len(registered)
    recorded = indexed_hashes(instance, {key: current[key] for key in registered})
    pending = set(compare_shards(recorded, {key: current[key] for key in registered}).to_index)
    return [key for key in registered if key in pending], missing, len(registered)


def run_groups(partitions: list[str], keys: list[str], size: int) -> list[list[str]]:
    """`keys` in groups of at most `size` for one run each, like a backfill's.

    A run names its shards as a range of the registered partitions, in the order they were
    registered, so a group is consecutive in that order: a shard left out (indexed already, or
    its input gone) ends a group rather than being run inside its range.
    """
    wanted = set(keys)
    groups: list[list[str]] = []
    group: list[str] = []
    for key in partitions:
        if key in wanted and len(group) < size:
            group.append(key)
            continue
        if group:
            groups.append(group)
        group = [key] if key in wanted else []
    if group:
        groups.append(group)
    return groups


def register(defs, instance: DagsterInstance, say: Callable[[str], None] = print) -> list[str]:
    """The register_shards job, in process; its shard keys.

    Dagster's console logger would print a failed step's stack trace before the command's
    one-line error. So the run prints nothing; what its op warned of (a corpus file it could not
    read) is said here a line each, and a failure raises `Failure` with the step's first line.
    """
    result = defs.resolve_job_def("register_shards").execute_in_process(
        instance=instance, run_config=SILENT, raise_on_error=False,
        tags={**process_tags(), TRIGGER_TAG: "command"},
    )  # fmt: skip
    for entry in instance.all_logs(result.run_id):
        if entry.dagster_event is None and entry.level >= logging.WARNING:
            say(entry.user_message)
    if not result.success:
        raise Failure(first_failure(result), allow_retries=False)
    return result.output_for_node("register_corpus_shards")


def index_corpus(
    every: bool = False, remove_missing: bool = False, say: Callable[[str], None] = print
) -> IndexSummary:
    """Register the configured corpus, index its shards that need it (all with `every`), and
    wait until the index answers searches for all of them.

    Registered shards whose input is gone are kept, as the corpus sensor keeps them by default
    (a folder missing for a moment must not empty the index); `remove_missing` deletes their
    objects and partitions with the `remove_shards` job, as the sensor's "remove" mode does.
    """
    from orchestration.definitions import build_resources, defs
    from orchestration.instance import prepare_instance

    started = time.perf_counter()
    prepare_instance()
    with DagsterInstance.get() as instance, Interrupts() as interrupts:
        try:
            keys = register(defs, instance, say)
        except DagsterExecutionInterruptedError:  # Dagster's own handler took the signal
            return IndexSummary(stopped_by=interrupts.received or signal.SIGINT)
        except Failure:
            if interrupts.received:  # the signal ended the registration's step
                return IndexSummary(stopped_by=interrupts.received)
            raise
        say(f"{len(keys)} shards registered")
        resources = build_resources()
        data_dir = resources["corpus"].data_dir
        pending, missing, registered = shards_to_index(instance, data_dir, every)
        if missing and remove_missing:
            remove(defs, instance, missing)
        summary = run_shards(instance, pending, say, interrupts)
        summary.shards, summary.missing, summary.removed = registered, missing, remove_missing
        summary.stopped_by = interrupts.received
        if summary.ok and summary.indexed:
            weaviate = resources["weaviate"]
            with weaviate.client() as client:
                if wait_until_searchable(client, weaviate.collection, lambda: interrupts.received):
                    summary.searchable_after = time.perf_counter() - started
            summary.rates = stage_rates(instance, summary.run_ids, summary.totals)
        summary.stopped_by = interrupts.received  # also while waiting for the index
    return summary


def remove(defs, instance: DagsterInstance, keys: list[str]) -> None:
    """The remove_shards job, in process, over `keys`."""
    config = {"ops": {"remove_shard_objects": {"config": {"shards": keys}}}}
    defs.resolve_job_def("remove_shards").execute_in_process(
        instance=instance,
        run_config={**QUIET, **config},
        tags={**process_tags(), TRIGGER_TAG: "command"},
    )


def run_shards(
    instance: DagsterInstance,
    keys: list[str],
    say: Callable[[str], None] = print,
    interrupts: Interrupts | None = None,
    shards_per_run: int = SHARDS_PER_RUN,
) -> IndexSummary:
    """Run `index_shards` over `keys`, `shards_per_run` a run, as many runs at once as the
    instance's run queue allows, reporting progress."""
    summary = IndexSummary(to_index=list(keys))
    for run_id in fail_dead_runs(instance, say):
        say(f"(run {run_id[:8]} was failed: its process had died)")
    partitions = instance.get_dynamic_partitions(shard_partitions.name)
    groups = run_groups(partitions, keys, shards_per_run)
    pool = RunPool(runs_at_once(instance))
    if interrupts is not None:
        interrupts.on_stop, interrupts.on_kill = pool.stop, pool.kill
    started = time.perf_counter()

    def report(outcome: RunOutcome) -> None:
        summary.add(outcome)
        say(_progress(summary, time.perf_counter() - started, outcome))
        if outcome.error.startswith(WEAVIATE_DOWN) and not pool.stopping:
            summary.halted_by = outcome.error
            say(f"stopping: {outcome.error}")
            pool.stop()

    if groups:
        say(f"{len(keys)} shards to index in {len(groups)} runs, {pool.size} at once")
        pool.run(groups, report)
    # A worker killed inside its run left it STARTED: failed now, its GPU slot freed.
    fail_dead_runs(instance)
    summary.seconds = time.perf_counter() - started
    return summary


def _progress(summary: IndexSummary, seconds: float, outcome: RunOutcome) -> str:
    total = len(summary.to_index)
    done = len(summary.indexed) + len(summary.failed)
    rate = done / seconds if seconds > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    if outcome.success:
        status = "ok"
    elif outcome.run_id is None:
        status = "FAILED (its worker process ended)"
    else:
        status = f"FAILED (run {outcome.run_id[:8]})"
    part = outcome.shards
    shards = part[0] if len(part) == 1 else f"{part[0]}..{part[-1]}"
    return (
        f"  {shards}: {status}  {done}/{total} shards, {rate * 60:.1f} shards/min, ETA {eta:.0f}s"
    )


def _listed(keys: list[str], most: int = 10) -> str:
    return ", ".join(keys[:most]) + ("..." if len(keys) > most else "")


def describe(summary: IndexSummary) -> str:
    counts = ", ".join(
        f"{summary.totals.get(name, 0)} {name}" for name in ("documents", "chunks", "objects")
    )
    missing = ""
    if summary.missing:
        missing = (
            f"\n{len(summary.missing)} registered shards have no input any more "
            f"({_listed(summary.missing, 5)}): "
            + (
                "their objects and partitions were deleted"
                if summary.removed
                else "kept; `weaviate-indexer index --remove-missing` deletes their objects"
            )
        )
    if not summary.to_index:
        return (
            f"all {summary.shards} shards are indexed at their current content; nothing to do"
            + missing
        )
    lines = [
        f"indexed {len(summary.indexed)}/{len(summary.to_index)} shards ({counts} written) "
        f"in {summary.seconds:.1f}s; {summary.shards - len(summary.to_index)} were already "
        "indexed"
    ]
    if summary.searchable_after is not None:
        lines.append(f"files to searchable: {summary.searchable_after:.1f}s")
    if summary.rates:
        lines.append(
            "stages: " + ", ".join(f"{rate:,.0f} {unit}/s" for unit, rate in summary.rates.items())
        )
    left = summary.failed + summary.not_run
    if summary.halted_by:
        lines.append(
            f"stopped after a run failed with: {summary.halted_by}\n{len(left)} shards not "
            "indexed; run the command again once Weaviate takes writes"
        )
    elif summary.stopped_by:
        lines.append(
            f"stopped by {signal.Signals(summary.stopped_by).name}: {len(left)} shards not "
            "indexed; "
            "run the command again to finish"
        )
    elif summary.failed:
        lines.append(
            f"failed shards: {_listed(summary.failed)}; run the command again to retry them"
        )
    return "\n".join(lines) + missing
