"""`EmbeddingResource`: the Dagster face of the embedding engine.

Configuration only; the work is in `engine.py`. Engines are cached per process by their
configuration, so every asset and op in a step process shares one model and one tokenizer pool.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, model_validator

from resources.embedding.devices import MultiDeviceEngine, device_list
from resources.embedding.engine import EmbeddingEngine, EmbeddingResult, EngineConfig
from resources.embedding.model import read_max_length
from resources.embedding.model_source import DEFAULT_MODEL, resolve_model_path
from resources.embedding.probe import ProbeResult
from resources.embedding.tokenization import Tokenized

Engine = EmbeddingEngine | MultiDeviceEngine
_ENGINES: dict[EngineConfig, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(config: EngineConfig) -> Engine:
    """The process's engine for `config`, created on first use: one per device it names."""
    with _ENGINES_LOCK:
        if config not in _ENGINES:
            devices = device_list(config.device)
            _ENGINES[config] = (
                MultiDeviceEngine(config, devices) if len(devices) > 1 else EmbeddingEngine(config)
            )
        return _ENGINES[config]


class EmbeddingResource(ConfigurableResource):
    """Embeds texts into unit vectors with length-sorted, token-budget batches on a GPU.

    Falls back to the CPU when no GPU is there (`device="auto"`); recovers from out-of-memory
    errors without losing a text; learns the largest budget this GPU takes and keeps it under
    `<data_dir>/budgets/` for the next run.
    """

    model: str = Field(
        default=DEFAULT_MODEL,
        description="The packaged all-MiniLM-L6-v2 by name, or a local sentence-transformers "
        "model directory.",
    )
    device: str = Field(
        default="auto",
        description='"auto" (every GPU, else the CPU), "cpu", "cuda" (every GPU), "cuda:N", or '
        'a comma-separated list such as "cuda:0,cuda:1": one engine process per device, each '
        "call split between them by tokens.",
    )
    dtype: str = Field(
        default="auto",
        description='"auto" (bf16 or fp16 on GPUs, fp32 on the CPU), "float32", "bfloat16" '
        'or "float16".',
    )
    max_length: int | None = Field(
        default=None,
        description="Tokens per text, special tokens included; default: the model's "
        "max_seq_length (256 for all-MiniLM-L6-v2).",
    )
    token_budget: int | None = Field(
        default=None,
        description="Fixed padded tokens per batch instead of the adaptive budget.",
    )
    batch_size: int | None = Field(
        default=None, description="Fixed texts per batch (still length-sorted)."
    )
    min_budget: int = Field(default=512, description="Lowest adaptive budget, padded tokens.")
    max_budget: int = Field(default=131072, description="Highest adaptive budget, padded tokens.")
    target_memory_fraction: float = Field(
        default=0.85, description="The adaptive budget grows while peak GPU memory stays under it."
    )
    tokenizer_workers: int | None = Field(
        default=None,
        description="Tokenizer processes; default: one per core but one on a GPU, none on the CPU.",
    )
    data_dir: str | None = Field(
        default=None,
        description="Where learned budgets are kept (under budgets/); default: INDEXER_DATA_DIR "
        'or ".data".',
    )
    profile_nvtx: bool = Field(
        default=False, description="Mark tokenize, copy, forward and pooling with NVTX ranges."
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the model: faster batches on a GPU after a one-off "
        "compilation of about half a minute per process (BENCHMARKS.md).",
    )
    packed: bool | None = Field(
        default=None,
        description="Run batches unpadded, rows packed end to end through variable-length "
        "flash attention. Default: wherever it runs (CUDA, half precision).",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_max_length(cls, values: Any) -> Any:
        """Fill max_length from the model directory, so `r.max_length` is always the real one."""
        if isinstance(values, dict) and values.get("max_length") is None:
            model = values.get("model") or DEFAULT_MODEL
            # An EnvVar (a str) is resolved later by Dagster; the engine then reads the length.
            if isinstance(model, str) and not isinstance(model, EnvVar):
                values = {**values, "max_length": read_max_length(resolve_model_path(model))}
        return values

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            model=self.model,
            device=self.device,
            dtype=self.dtype,
            max_length=self.max_length,
            token_budget=self.token_budget,
            batch_size=self.batch_size,
            min_budget=self.min_budget,
            max_budget=self.max_budget,
            target_memory_fraction=self.target_memory_fraction,
            tokenizer_workers=self.tokenizer_workers,
            data_dir=self.data_dir,
            profile_nvtx=self.profile_nvtx,
            compile=self.compile,
            packed=self.packed,
        )

    @cached_property
    def _engine(self) -> Engine:
        return engine_for(self.engine_config())

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # At run start, before any step waits for the GPU pool: the model loads and the GPU
        # runs a first batch while other runs hold the pool, not inside this run's slot.
        self._engine.prepare()

    @property
    def dimension(self) -> int:
        return self._engine.dimension

    def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        """Unit vectors for `texts` in input order, float32 [len(texts), dimension], and stats."""
        return self._engine.embed(texts)

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> EmbeddingResult:
        """Like `embed` for rows already tokenized with special tokens, each <= max_length."""
        return self._engine.embed_token_ids(token_ids)

    def embed_tokenized(self, tokenized: Tokenized) -> EmbeddingResult:
        """Like `embed_token_ids` for rows already in flat arrays (an Arrow list column's)."""
        return self._engine.embed_tokenized(tokenized)

    def model_identity(self) -> dict[str, str | int]:
        """name, sha256 of the weights, dtype, max_length, dim: the key of embedding checkpoints."""
        return self._engine.model_identity()

    def probe(self) -> ProbeResult:
        """Find and keep the largest token budget this GPU takes at max_length."""
        return self._engine.probe()
