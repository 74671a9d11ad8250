"""Repairs to Dagster's internals, in one place, applied when the definitions are built.

Each one relies on something private to dagster 1.13 and is guarded: when what it relies on is
gone or renamed (a Dagster upgrade), it is skipped with a warning that names it, and Dagster's
own behaviour stays, so an upgrade never breaks loading the definitions or importing an asset.
`apply()` is called by `build_definitions`, so every process that loads the project's code
(the webserver's code server, a run's worker, a Kubernetes step pod, the commands) has them.

- The pool wait: a step whose concurrency pool is full waits in the run's executor loop, and in
  dagster 1.13 that loop never sleeps while a claim is pending
  (`InstanceConcurrencyContext.interval_to_next_pending_claim_check` returns `min(0, ...)`),
  so a waiting run burns a core. Repaired: it sleeps until the claim's next check (Dagster's
  own backoff, up to 15 s).
- The pool's holders: Dagster reports a blocked step only as a DEBUG engine event. Repaired: an
  INFO line says which runs and steps hold the pool's slots.
- Warnings Dagster raises from its own code on parameters no code here sets (a copy of each
  sensor, the snapshot of each schedule): nothing a user can act on, filtered by message.
  Warnings about the project's own use of a beta feature are silenced where it is used
  (`assets/shards.py`, `assets/index.py`).

Nothing else about pools changes: slots, limits and their freeing stay Dagster's.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator

from dagster import BetaWarning, DagsterInstance

logger = logging.getLogger(__name__)

# (message prefix, category) of each warning Dagster raises from its own code.
DAGSTER_INTERNAL_WARNINGS = [
    # Dagster copies sensor definitions through an initializer whose `owners` parameter is beta.
    ("Parameter `owners` of initializer `SensorDefinition.__init__`", BetaWarning),
    # Dagster's own serialization of every schedule reads this deprecated property.
    ("Property `ScheduleDefinition.environment_vars` is deprecated", DeprecationWarning),
]


def holders(instance: DagsterInstance, pool: str) -> str:
    """Who holds `pool`'s slots, for a message: "2 of 2 slots: run 1a2b3c4d step embeddings"."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    taken = [f"run {slot.run_id[:8]} step {slot.step_key}" for slot in info.claimed_slots]
    return f"{len(taken)} of {info.slot_count} slot(s) taken" + (
        f": {', '.join(taken)}" if taken else ""
    )


def _interval_to_next_pending_claim_check(self) -> float:
    """Seconds until the earliest pending claim may be checked again (never negative)."""
    if not self._pending_claims:
        return 0.0
    now = time.time()
    return max(0.0, min(ready_at - now for ready_at in self._pending_timeouts.values()))


def _repair_pool_wait() -> bool:
    try:
        from dagster._core.execution.plan.instance_concurrency_context import (
            InstanceConcurrencyContext,
        )
    except ImportError:
        return False
    original = getattr(InstanceConcurrencyContext, "interval_to_next_pending_claim_check", None)
    if original is _interval_to_next_pending_claim_check:
        return True
    # The repair reads the two attributes Dagster's own method reads.
    names = set(getattr(getattr(original, "__code__", None), "co_names", ()))
    if not {"_pending_claims", "_pending_timeouts"} <= names:
        return False
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = (
        _interval_to_next_pending_claim_check
    )
    return True


def _saying_who_holds(events: Callable) -> Callable:
    def concurrency_events(self, plan_context) -> Iterator:
        """Dagster's own blocked-step events, each followed by an INFO line naming the holders."""
        for event in events(self, plan_context):
            yield event
            data = getattr(event, "event_specific_data", None)
            pool = getattr(data, "metadata", {}).get("pool")
            if pool is not None:
                name = getattr(pool, "value", pool)
                plan_context.log.info(
                    f"step {event.step_key} waits for pool {name} "
                    f"({holders(plan_context.instance, name)})"
                )

    concurrency_events.repairs = events
    return concurrency_events


def _repair_pool_message() -> bool:
    try:
        from dagster._core.execution.plan.active import ActiveExecution
    except ImportError:
        return False
    events = getattr(ActiveExecution, "concurrency_event_iterator", None)
    if not callable(events):
        return False
    if not hasattr(events, "repairs"):
        ActiveExecution.concurrency_event_iterator = _saying_who_holds(events)
    return True


REPAIRS: dict[str, Callable[[], bool]] = {
    "the pool wait sleeps between checks": _repair_pool_wait,
    "a step waiting for a pool says who holds it": _repair_pool_message,
}


def apply() -> list[str]:
    """Apply every repair that still fits this Dagster (once; later calls change nothing) and
    the warning filters; returns the repairs that did not fit, each also logged."""
    for message, category in DAGSTER_INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    skipped = [name for name, repair in REPAIRS.items() if not repair()]
    for name in skipped:
        logger.warning(f"this Dagster's internals changed; not repaired: {name}")
    return skipped
