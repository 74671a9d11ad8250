"""The GPU embedding engine and its Dagster resource.

The core (planner, budget controller, OOM policy, engine) is plain Python and torch and imports
no Dagster; `EmbeddingResource` is imported lazily so the core also runs where Dagster is not
installed (a bare GPU machine running the benchmark).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resources.embedding.budget import BudgetController
from resources.embedding.engine import EmbeddingEngine, EmbeddingResult, EngineConfig
from resources.embedding.oom import OomAboveTokens, OomFirstCalls, is_oom, run_splitting
from resources.embedding.planner import Batch, iter_batches, length_order, plan_batches
from resources.embedding.probe import ProbeResult, Trial, search_budget
from resources.embedding.stats import EmbeddingStats

if TYPE_CHECKING:
    from resources.embedding.resource import EmbeddingResource

__all__ = [
    "Batch",
    "BudgetController",
    "EmbeddingEngine",
    "EmbeddingResource",
    "EmbeddingResult",
    "EmbeddingStats",
    "EngineConfig",
    "OomAboveTokens",
    "OomFirstCalls",
    "ProbeResult",
    "Trial",
    "is_oom",
    "iter_batches",
    "length_order",
    "plan_batches",
    "run_splitting",
    "search_budget",
]


def __getattr__(name: str) -> Any:
    if name == "EmbeddingResource":
        from resources.embedding.resource import EmbeddingResource

        return EmbeddingResource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
