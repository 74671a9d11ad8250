"""`EmbeddingResource`: the Dagster face of the embedding engine.

Configuration only; the work is in `engine.py`. Engines are cached per process by their
configuration, so every asset and op in a step process shares one model and one tokenizer pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

import torch
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, model_validator

from resources import settings
from resources.embedding.devices import MultiDeviceEngine, device_list
from resources.embedding.engine import (
    EmbeddingEngine,
    EmbeddingResult,
    EngineConfig,
    model_identity,
)
from resources.embedding.lease import Gpu, leased, visible_gpus
from resources.embedding.model import read_max_length, resolve_device
from resources.embedding.tokenization import Tokenized
from resources.tokenizer.model_source import resolve_model_path

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


@dataclass(frozen=True)
class LeasedEngine:
    """The engine a step embeds with, and the GPUs it holds alone while it does (none on the
    CPU)."""

    engine: Engine
    gpus: tuple[Gpu, ...]

    def metadata(self) -> dict[str, str]:
        """Which GPUs made a shard's vectors, by the names every process of the host agrees on."""
        return {"gpus": ",".join(gpu.uuid for gpu in self.gpus)} if self.gpus else {}


def lease_plan(device: str) -> tuple[list[Gpu], int]:
    """The GPUs a `device` setting may embed on, and how many of them one step takes.

    "auto" and "cuda" take any one free GPU (one step per GPU: a backfill uses them all),
    "cuda:N" that one, a list or "all" every GPU it names at once. The CPU takes none.
    """
    devices = device_list(device)
    if any(name.startswith("cpu") for name in devices) or not torch.cuda.is_available():
        return [], 0
    gpus = visible_gpus()
    if device in ("auto", "cuda"):
        return gpus, 1
    by_name = {gpu.device: gpu for gpu in gpus}
    named = [by_name[str(resolve_device(name))] for name in devices]
    return named, len(named)


# The engine's settings and their defaults are declared once, in EngineConfig; the resource
# exposes each of them to Dagster with a description, and takes those a user sets in the
# environment (the model, the device, the data folder) from `resources/settings.py`.
_ENGINE = EngineConfig()


class EmbeddingResource(ConfigurableResource):
    """Embeds texts into unit vectors with length-sorted, token-budget batches on a GPU.

    Falls back to the CPU when no GPU is there (`device="auto"`); recovers from out-of-memory
    errors without losing a text; learns the largest budget this GPU takes and keeps it under
    `<data_dir>/budgets/` for the next run.
    """

    model: str = settings.embedding_model.field(
        "The packaged all-MiniLM-L6-v2 by name, or a local sentence-transformers model directory."
    )
    device: str = settings.embedding_device.field(
        '"auto" (a GPU, else the CPU; each pipeline step takes a free GPU of its own, so a '
        'backfill uses every GPU), "cpu", "cuda" (like auto, never the CPU), "cuda:N", or '
        '"all" or a list such as "cuda:0,cuda:1": every call split between those GPUs by '
        "tokens, one engine process each."
    )
    dtype: str = Field(
        default=_ENGINE.dtype,
        description='"auto" (bf16 or fp16 on GPUs, fp32 on the CPU), "float32", "bfloat16" '
        'or "float16".',
    )
    max_length: int | None = Field(
        default=_ENGINE.max_length,
        description="Tokens per text, special tokens included; default: the model's "
        "max_seq_length (256 for all-MiniLM-L6-v2).",
    )
    token_budget: int | None = Field(
        default=_ENGINE.token_budget,
        description="Fixed padded tokens per batch instead of the adaptive budget.",
    )
    batch_size: int | None = Field(
        default=_ENGINE.batch_size, description="Fixed texts per batch (still length-sorted)."
    )
    min_budget: int = Field(
        default=_ENGINE.min_budget, description="Lowest adaptive budget, padded tokens."
    )
    max_budget: int = Field(
        default=_ENGINE.max_budget, description="Highest adaptive budget, padded tokens."
    )
    target_memory_fraction: float = Field(
        default=_ENGINE.target_memory_fraction,
        description="The adaptive budget grows while peak GPU memory stays under it.",
    )
    tokenizer_workers: int | None = Field(
        default=_ENGINE.tokenizer_workers,
        description="Tokenizer processes; default: one per core but one on a GPU, none on the CPU.",
    )
    data_dir: str = settings.data_dir.field("Where learned budgets are kept (under budgets/).")
    profile_nvtx: bool = Field(
        default=_ENGINE.profile_nvtx,
        description="Mark tokenize, copy, forward and pooling with NVTX ranges.",
    )
    compile: bool = Field(
        default=_ENGINE.compile,
        description="torch.compile the model: faster batches on a GPU after a one-off "
        "compilation of about half a minute per process (BENCHMARKS.md).",
    )
    packed: bool | None = Field(
        default=_ENGINE.packed,
        description="Run batches unpadded, rows packed end to end through variable-length "
        "flash attention. Default: wherever it runs (CUDA, half precision).",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_max_length(cls, values: Any) -> Any:
        """Fill max_length from the model directory, so `r.max_length` is always the real one."""
        if isinstance(values, dict) and values.get("max_length") is None:
            model = values.get("model") or settings.embedding_model()
            values = {**values, "max_length": read_max_length(resolve_model_path(model))}
        return values

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            **{field.name: getattr(self, field.name) for field in fields(EngineConfig)}
        )

    @cached_property
    def _engine(self) -> Engine:
        return engine_for(self.engine_config())

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # At run start, before any step waits for the GPU pool: the model loads and the GPU
        # runs a first batch while other runs hold the pool, not inside this run's slot. Only
        # where the step's GPU is known in advance: with several to lease from, the step
        # prepares on the one it gets.
        candidates, _ = lease_plan(self.device)
        if len(candidates) <= 1:
            self._engine.prepare()

    @contextmanager
    def leased(self, holder: str, log: Callable[[str], None]) -> Iterator[LeasedEngine]:
        """The engine on GPUs this caller holds alone until the block ends; waits while none
        is free, saying so through `log` with who holds them. `holder` names the caller in
        that message (a run and step)."""
        candidates, count = lease_plan(self.device)
        if count == 0:
            yield LeasedEngine(self._engine, ())
            return
        with leased(candidates, count, holder, log) as gpus:
            config = self.engine_config()
            if self.device in ("auto", "cuda"):
                config = replace(config, device=gpus[0].device)
            log(f"embedding on {', '.join(f'{gpu.device} ({gpu.uuid})' for gpu in gpus)}")
            yield LeasedEngine(engine_for(config), tuple(gpus))

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
        config = self.engine_config()
        return model_identity(config, resolve_device(device_list(config.device)[0]))
