"""The concurrency pool that GPU steps wait in, and two repairs to how Dagster waits for it.

A step whose pool is full waits inside the run's process, in Dagster's executor loop. In
dagster 1.13 that loop never sleeps while a claim is pending
(`InstanceConcurrencyContext.interval_to_next_pending_claim_check` returns `min(0, ...)`, never
above zero), so a waiting run burns a core, and it reports the wait only as a DEBUG engine
event. Both are repaired here, where the assets that use the pool import it, so every process
that runs them has the repairs: the wait sleeps until the claim's next check (Dagster's own
backoff, up to 15 s), and an INFO line says which runs and steps hold the pool's slots.
Nothing else about pools changes: slots, limits and their freeing stay Dagster's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

GPU_POOL = "gpu"
logger = logging.getLogger(__name__)


def _interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    """Seconds until the earliest pending claim may be checked again (never negative)."""
    if not self._pending_claims:
        return 0.0
    now = time.time()
    return max(0.0, min(ready_at - now for ready_at in self._pending_timeouts.values()))


def holders(instance, pool: str) -> str:
    """Who holds `pool`'s slots, for a message: "2 of 2 slots: run 1a2b3c4d step embeddings"."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    taken = [f"run {slot.run_id[:8]} step {slot.step_key}" for slot in info.claimed_slots]
    return f"{len(taken)} of {info.slot_count} slot(s) taken" + (
        f": {', '.join(taken)}" if taken else ""
    )


_original_events = ActiveExecution.concurrency_event_iterator


def _concurrency_events(self: ActiveExecution, plan_context) -> Iterator:
    """Dagster's own blocked-step events, each with an INFO line naming the holders."""
    for event in _original_events(self, plan_context):
        yield event
        pool = event.event_specific_data.metadata.get("pool") if event.event_specific_data else None
        if pool is not None:
            name = getattr(pool, "value", pool)
            plan_context.log.info(
                f"step {event.step_key} waits for pool {name} "
                f"({holders(plan_context.instance, name)})"
            )


if hasattr(InstanceConcurrencyContext, "interval_to_next_pending_claim_check"):
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = (
        _interval_to_next_pending_claim_check
    )
    ActiveExecution.concurrency_event_iterator = _concurrency_events
else:  # a Dagster whose executor changed: its own waiting, unrepaired
    logger.warning("dagster's pool wait changed; the pool wait repairs are not applied")
