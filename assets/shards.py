"""Running an asset over every shard of a run, one shard at a time.

Backfills group shards into runs (a run's start-up costs seconds, the 1.25M-document corpus has
about 1,250 shards), so an asset's step may own several partitions. Each shard is still its own
checkpoint: its stage file or Weaviate state is complete before the next shard starts, and a
re-executed run skips the GPU and Weaviate work of shards that were already finished.
"""

import os
import statistics
import time
from collections.abc import Callable

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult

# Shards per backfill run: enough to spread a run's start-up, few enough that a failed run
# leaves little to redo. Set SHARDS_PER_RUN to change it.
SHARDS_PER_RUN = int(os.environ.get("SHARDS_PER_RUN", "8"))
BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=SHARDS_PER_RUN)
PROGRESS_INTERVAL_SECONDS = 30.0

Metadata = dict[str, object]


def combine(per_shard: list[Metadata]) -> Metadata:
    """One metadata dict for a run of several shards.

    Counts add up; peaks and maxima take the largest value, minima the smallest; rates,
    fractions, medians and final values are averaged over the shards; text that differs
    between shards is listed once per value.
    """
    if len(per_shard) == 1:
        return per_shard[0]
    combined: Metadata = {"shards_in_run": len(per_shard)}
    for name in dict.fromkeys(k for m in per_shard for k in m):
        values = [m[name] for m in per_shard if name in m]
        if all(isinstance(v, bool) for v in values):
            combined[name] = all(values)
        elif all(isinstance(v, int | float) for v in values):
            combined[name] = _combine_numbers(name, values)
        elif all(v == values[0] for v in values):
            combined[name] = values[0]
        else:
            combined[name] = ", ".join(dict.fromkeys(str(getattr(v, "value", v)) for v in values))
    return combined


def _combine_numbers(name: str, values: list) -> float | int:
    if "peak" in name or "max" in name:
        return max(values)
    if "min" in name:
        return min(values)
    if any(word in name for word in ("per_second", "fraction", "median", "final")):
        return round(statistics.fmean(values), 4)
    return sum(values)


def for_each_shard(
    context: AssetExecutionContext, work: Callable[[str], Metadata]
) -> MaterializeResult:
    """Run `work` for every partition key of the run, logging progress at a steady pace."""
    keys = context.partition_keys
    started = last_log = time.monotonic()
    per_shard: list[Metadata] = []
    for done, key in enumerate(keys, start=1):
        per_shard.append(work(key))
        now = time.monotonic()
        if len(keys) > 1 and (now - last_log >= PROGRESS_INTERVAL_SECONDS or done == len(keys)):
            rate = done / (now - started)
            eta = (len(keys) - done) / rate if rate > 0 else 0.0
            context.log.info(
                f"{done}/{len(keys)} shards, {rate * 60:.1f} shards/min, ETA {eta:.0f}s"
            )
            last_log = now
    return MaterializeResult(metadata=combine(per_shard))
