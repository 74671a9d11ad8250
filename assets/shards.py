"""Running an asset over every shard of a run.

Backfills group shards into runs (a run's start-up costs seconds, the 1.25M-document corpus has
about 1,250 shards), so an asset's step may own several partitions. Each shard is still its own
checkpoint: its stage file or Weaviate state is written whole (the chunks step cuts several
shards at once, each into its own file), a re-executed run skips the GPU and Weaviate work
of shards that were already finished, and a step that fails still materializes the shards it
finished before the one that failed.
"""

import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    MaterializeResult,
    asset,
)

from assets.partitions import shard_partitions
from resources import settings

# Shards per backfill run: enough to spread a run's start-up (about 20 s on a busy machine), few
# enough that a failed run leaves little to redo. On one H100 machine, runs of 16 left 9.6% of a
# backfill's wall time to orchestration and runs of 8 left 15 to 20% (BENCHMARKS.md, "The full
# run on one H100"). Set SHARDS_PER_RUN to change it; read when the definitions load, since the
# policy is part of them.
SHARDS_PER_RUN = settings.shards_per_run()
BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=SHARDS_PER_RUN)
PROGRESS_INTERVAL_SECONDS = 30.0
# The CPU stages (reading input, chunking, ingest) run at a lower scheduling priority than the
# embeddings step: when several runs share a machine, they would otherwise take the cores that
# the thread launching GPU batches needs, and its embedding rate halves (BENCHMARKS.md, the
# shard diagnostic). Set CPU_STAGE_NICENESS=0 to run them at normal priority.
CPU_STAGE_NICENESS = settings.cpu_stage_niceness()

Metadata = dict[str, object]


StageCompute = Callable[..., MaterializeResult]


def shard_asset(**asset_args: Any) -> Callable[[StageCompute], AssetsDefinition]:
    """`@asset` for a stage of the indexing pipeline: one partition per shard, backfilled in runs
    of `SHARDS_PER_RUN` shards, in the `indexing` group; `asset_args` add the stage's own.

    Backfill policies are beta in Dagster 1.13. The stages use one on purpose (see above), so the
    warning Dagster would print for each of them on every code load says nothing a user can act
    on; it is silenced here, where it is raised, and nowhere else.
    """

    def define(compute: StageCompute) -> AssetsDefinition:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Parameter `backfill_policy`", category=BetaWarning
            )
            return asset(
                partitions_def=shard_partitions,
                backfill_policy=BACKFILL_POLICY,
                group_name="indexing",
                **asset_args,
            )(compute)

    return define


@contextmanager
def _mapped(
    work: Callable[[str], Metadata], niceness: int, processes: int
) -> Iterator[Callable[[list[str]], Iterator[Metadata]]]:
    """A map of `work` over keys that yields each key's metadata in key order.

    With `processes` > 1, `work` runs in that many spawned worker processes (it must pickle).
    Otherwise it runs in this process, on a thread of its own at `niceness` (Linux only): Linux
    keeps a nice value per thread and an unprivileged process cannot lower it again, so the
    run's later steps, in the same process, keep normal priority. Threads the work starts
    (ingest requests, Arrow's pool) inherit it, and so do worker processes.
    """
    lower = niceness > 0 and sys.platform == "linux"
    if processes > 1:
        # `os.nice` itself as the initializer: a worker imports only what `work` needs.
        spawn = multiprocessing.get_context("spawn")
        nice = {"initializer": os.nice, "initargs": (niceness,)} if lower else {}
        with ProcessPoolExecutor(processes, spawn, **nice) as pool:
            yield lambda keys: pool.map(work, keys)
    elif not lower:
        yield lambda keys: map(work, keys)
    else:
        with ThreadPoolExecutor(1, "cpu-stage", initializer=os.nice, initargs=(niceness,)) as pool:
            # One shard at a time: a failed shard stops the step before the next one starts.
            yield lambda keys: (pool.submit(work, key).result() for key in keys)


def for_each_shard(
    context: AssetExecutionContext,
    work: Callable[[str], Metadata],
    niceness: int = 0,
    processes: int = 1,
) -> MaterializeResult:
    """Run `work` for every partition key of the run, logging progress at a steady pace.

    Each shard's metadata goes on its own partition's materialization, so the UI's plots across
    partitions show a shard's own numbers also when a backfill run covered several shards.
    With `niceness`, the work runs at that lower priority (see `CPU_STAGE_NICENESS`); with
    `processes`, several shards at once in worker processes, still reported in key order.
    """
    keys = context.partition_keys
    finished: dict[str, Metadata] = {}
    try:
        with _mapped(work, niceness, min(processes, len(keys))) as mapped:
            started = last_log = time.monotonic()
            for done, (key, metadata) in enumerate(zip(keys, mapped(keys), strict=True), start=1):
                if len(keys) == 1:
                    return MaterializeResult(metadata=metadata)
                context.add_asset_metadata(metadata, partition_key=key)
                finished[key] = metadata
                now = time.monotonic()
                if now - last_log >= PROGRESS_INTERVAL_SECONDS or done == len(keys):
                    rate = done / (now - started)
                    eta = (len(keys) - done) / rate if rate > 0 else 0.0
                    context.log.info(
                        f"{done}/{len(keys)} shards, {rate * 60:.1f} shards/min, ETA {eta:.0f}s"
                    )
                    last_log = now
    except BaseException:
        _record_finished(context, finished)
        raise
    return MaterializeResult(metadata={"shards_in_run": len(keys)})


def _record_finished(context: AssetExecutionContext, finished: dict[str, Metadata]) -> None:
    """Materialize the shards a failing or interrupted step finished before it stopped.

    Dagster records a step's partitions only when the step succeeds, so without this a shard
    indexed in a run that failed on a later shard reads as not indexed (to `weaviate-indexer
    index`, the catch-up schedule and the sensors, which read materializations) until a re-run
    does it again.
    """
    for key, metadata in finished.items():
        context.log_event(
            AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata)
        )
