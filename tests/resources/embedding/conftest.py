from collections.abc import Callable
from typing import Any

import pytest

from resources.embedding.engine import EmbeddingEngine, EngineConfig
from resources.embedding.oom import FaultHook

# Short and long texts, an empty one and one past the 256-token window, in no particular order.
TEXTS = [
    "The cat sat on the mat.",
    "Weaviate stores vectors next to the objects they describe. " * 3,
    "",
    "GPU",
    "A much longer passage about embeddings, batching and memory, repeated. " * 24,
    "Short one.",
    "Dagster partitions the corpus into shards, one run per shard.",
    "tokens " * 20,
    "Ünïcödé text with emoji 🙂 and accents: café, naïve, façade.",
    "The quick brown fox jumps over the lazy dog.",
]


@pytest.fixture(scope="session")
def cpu_engine() -> Callable[..., EmbeddingEngine]:
    """Makes engines on the CPU; they share one model, loaded once per process."""

    def make(fault_hook: FaultHook | None = None, **settings: Any) -> EmbeddingEngine:
        return EmbeddingEngine(EngineConfig(device="cpu", **settings), fault_hook=fault_hook)

    return make


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return TEXTS * 2
