"""Running an asset over every shard of a run, one shard at a time.

Backfills group shards into runs (a run's start-up costs seconds, the 1.25M-document corpus has
about 1,250 shards), so an asset's step may own several partitions. Each shard is still its own
checkpoint: its stage file or Weaviate state is complete before the next shard starts, and a
re-executed run skips the GPU and Weaviate work of shards that were already finished.
"""

import os
import time
from collections.abc import Callable

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult

# Shards per backfill run: enough to spread a run's start-up, few enough that a failed run
# leaves little to redo. Set SHARDS_PER_RUN to change it.
SHARDS_PER_RUN = int(os.environ.get("SHARDS_PER_RUN", "8"))
BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=SHARDS_PER_RUN)
PROGRESS_INTERVAL_SECONDS = 30.0

Metadata = dict[str, object]


def for_each_shard(
    context: AssetExecutionContext, work: Callable[[str], Metadata]
) -> MaterializeResult:
    """Run `work` for every partition key of the run, logging progress at a steady pace.

    Each shard's metadata goes on its own partition's materialization, so the UI's plots across
    partitions show a shard's own numbers also when a backfill run covered several shards.
    """
    keys = context.partition_keys
    started = last_log = time.monotonic()
    for done, key in enumerate(keys, start=1):
        metadata = work(key)
        if len(keys) == 1:
            return MaterializeResult(metadata=metadata)
        context.add_asset_metadata(metadata, partition_key=key)
        now = time.monotonic()
        if now - last_log >= PROGRESS_INTERVAL_SECONDS or done == len(keys):
            rate = done / (now - started)
            eta = (len(keys) - done) / rate if rate > 0 else 0.0
            context.log.info(
                f"{done}/{len(keys)} shards, {rate * 60:.1f} shards/min, ETA {eta:.0f}s"
            )
            last_log = now
    return MaterializeResult(metadata={"shards_in_run": len(keys)})
