"""How fast each stage of a set of runs went: its work over the union of its steps' time.

Steps of concurrent runs overlap, so a stage's rate over the sum of its step times would
understate it, and over the command's wall time would mix in the other stages' time.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import DagsterInstance

# stage (step name) -> what it does: the amount counted (`run_pool.COUNTED`) and its unit.
STAGE_WORK = {
    "corpus_shard": ("documents", "documents read"),
    "chunks": ("tokens", "tokens chunked"),
    "embeddings": ("tokens_embedded", "tokens embedded"),
    "weaviate_index": ("objects", "objects stored"),
}

Interval = tuple[float, float]


def union_seconds(intervals: Iterable[Interval]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def step_intervals(instance: DagsterInstance, run_ids: Iterable[str]) -> dict[str, list[Interval]]:
    """step name (its partition range cut off) -> (start, end) of each finished step."""
    steps: dict[str, list[Interval]] = {}
    for run_id in run_ids:
        for step in instance.get_run_step_stats(run_id):
            if step.start_time and step.end_time:
                name = step.step_key.split("[")[0]
                steps.setdefault(name, []).append((step.start_time, step.end_time))
    return steps


def stage_rates(
    instance: DagsterInstance, run_ids: Iterable[str], totals: dict[str, int]
) -> dict[str, float]:
    """unit (e.g. "objects stored") -> per second, for each stage that did work."""
    steps = step_intervals(instance, run_ids)
    rates: dict[str, float] = {}
    for stage, (amount, unit) in STAGE_WORK.items():
        seconds = union_seconds(steps.get(stage, []))
        if seconds > 0 and totals.get(amount):
            rates[unit] = totals[amount] / seconds
    return rates
