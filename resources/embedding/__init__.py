"""The GPU embedding engine and its Dagster resource.

The core (planner, budget controller, OOM policy, engine) is plain Python and torch and imports
no Dagster, so it also runs where Dagster is not installed (a bare GPU machine running the
benchmark). The names below are imported on first use: a process that needs only this package's
tokenizer pool (a tokenizing worker) does not pay for importing torch and transformers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resources.embedding.engine import EmbeddingEngine, EmbeddingResult, EngineConfig
    from resources.embedding.resource import EmbeddingResource

_HOMES = {
    "EmbeddingEngine": "engine",
    "EmbeddingResource": "resource",
    "EmbeddingResult": "engine",
    "EngineConfig": "engine",
}
__all__ = ["EmbeddingEngine", "EmbeddingResource", "EmbeddingResult", "EngineConfig"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
