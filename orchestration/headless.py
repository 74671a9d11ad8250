"""Indexing a corpus from a terminal: the runs a UI backfill launches, through the same Dagster
instance and definitions, executed in this process one after another.

In process, so the model loads once for all runs instead of once per run. Each run covers up to
`SHARDS_PER_RUN` shards, like a backfill's; each shard is still its own checkpoint. Only shards
whose indexed content differs from the registered corpus are run (unless told to run all), so a
command killed at any point finishes the job when it is run again: the dead run it left behind
is failed and its pool slots freed first (`liveness.fail_dead_runs`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from assets.partitions import shard_partitions
from assets.shards import SHARDS_PER_RUN
from orchestration.changes import compare_shards
from orchestration.indexed import indexed_hashes
from orchestration.liveness import fail_dead_runs, process_tags
from resources.corpus.manifest import load_manifest

# Step events go to the Dagster instance (and the UI); the terminal gets warnings and progress.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
TRIGGER_TAG = "indexer/trigger"


@dataclass
class IndexSummary:
    """What a command's runs did, shard by shard."""

    shards: int = 0  # registered
    to_index: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # registered, input gone
    removed: bool = False  # the missing shards' objects and partitions were deleted
    indexed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)  # documents, chunks, objects
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


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


def register(defs, instance: DagsterInstance) -> list[str]:
    """The register_shards job, in process; its shard keys."""
    result = defs.resolve_job_def("register_shards").execute_in_process(
        instance=instance, run_config=QUIET, tags={**process_tags(), TRIGGER_TAG: "command"}
    )
    return result.output_for_node("register_corpus_shards")


def index_corpus(
    every: bool = False, remove_missing: bool = False, say: Callable[[str], None] = print
) -> IndexSummary:
    """Register the configured corpus, then index its shards that need it (all with `every`).

    Registered shards whose input is gone are kept, as the corpus sensor keeps them by default
    (a folder missing for a moment must not empty the index); `remove_missing` deletes their
    objects and partitions with the `remove_shards` job, as the sensor's "remove" mode does.
    """
    from orchestration.definitions import build_resources, defs
    from orchestration.instance import prepare_instance

    prepare_instance()
    with DagsterInstance.get() as instance:
        keys = register(defs, instance)
        say(f"{len(keys)} shards registered")
        data_dir = build_resources(resolved=True)["corpus"].data_dir
        pending, missing, registered = shards_to_index(instance, data_dir, every)
        if missing and remove_missing:
            remove(defs, instance, missing)
        summary = run_shards(defs, instance, pending, say)
    summary.shards = registered
    summary.missing, summary.removed = missing, remove_missing
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
    defs,
    instance: DagsterInstance,
    keys: list[str],
    say: Callable[[str], None] = print,
    shards_per_run: int = SHARDS_PER_RUN,
) -> IndexSummary:
    """Run `index_shards` over `keys`, `shards_per_run` at a time, reporting progress."""
    summary = IndexSummary(to_index=list(keys))
    for run_id in fail_dead_runs(instance, say):
        say(f"(run {run_id[:8]} was failed: its process had died)")
    job = defs.resolve_job_def("index_shards")
    partitions = instance.get_dynamic_partitions(shard_partitions.name)
    started = time.perf_counter()
    for part in run_groups(partitions, keys, shards_per_run):
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: part[0],
            ASSET_PARTITION_RANGE_END_TAG: part[-1],
            TRIGGER_TAG: "command",
            **process_tags(),
        }
        result = job.execute_in_process(
            instance=instance, tags=tags, raise_on_error=False, run_config=QUIET
        )
        done = _shard_numbers(result)
        for key in part:
            (summary.indexed if result.success else summary.failed).append(key)
            for name, value in done.get(key, {}).items():
                summary.totals[name] = summary.totals.get(name, 0) + value
        say(_progress(summary, len(keys), time.perf_counter() - started, part, result))
    summary.seconds = time.perf_counter() - started
    return summary


_COUNTED = ("documents", "chunks", "objects")


def _shard_numbers(result) -> dict[str, dict[str, int]]:
    """shard -> its documents, chunks and objects, from the run's materializations."""
    numbers: dict[str, dict[str, int]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        for name in _COUNTED:
            value = materialization.metadata.get(name)
            if value is not None and materialization.partition:
                numbers.setdefault(materialization.partition, {})[name] = int(value.value)
    return numbers


def _progress(summary: IndexSummary, total: int, seconds: float, part: list[str], result) -> str:
    done = len(summary.indexed) + len(summary.failed)
    rate = done / seconds if seconds > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    status = "ok" if result.success else f"FAILED (run {result.run_id[:8]})"
    shards = part[0] if len(part) == 1 else f"{part[0]}..{part[-1]}"
    return (
        f"  {shards}: {status}  {done}/{total} shards, {rate * 60:.1f} shards/min, ETA {eta:.0f}s"
    )


def describe(summary: IndexSummary) -> str:
    counts = ", ".join(f"{summary.totals.get(name, 0)} {name}" for name in _COUNTED)
    missing = ""
    if summary.missing:
        named = f"{', '.join(summary.missing[:5])}{'...' if len(summary.missing) > 5 else ''}"
        missing = (
            f"\n{len(summary.missing)} registered shards have no input any more ({named}): "
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
    line = (
        f"indexed {len(summary.indexed)}/{len(summary.to_index)} shards ({counts} written) "
        f"in {summary.seconds:.1f}s; {summary.shards - len(summary.to_index)} were already "
        "indexed"
    )
    if summary.failed:
        line += (
            f"\nfailed shards: {', '.join(summary.failed[:10])}"
            f"{'...' if len(summary.failed) > 10 else ''}; run the command again to retry them"
        )
    return line + missing
