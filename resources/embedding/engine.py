"""The embedding pipeline: tokenize ahead, pack length-sorted token-budget batches, run them.

Plain Python and torch; `resource.py` adapts it to Dagster. One engine per process holds the
model, the tokenizer workers and the adaptive budget, so later calls start where earlier ones
ended.

On a GPU the engine does not wait for a batch it has just launched: inputs go through pinned
memory with non-blocking copies (a copy from pageable memory would make the driver wait for the
stream), outputs come back the same way, and up to `IN_FLIGHT` finished batches wait for a
collector thread that puts their vectors into input order, while a builder thread prepares the
next batch's inputs (`overlap.py`): the launching thread only launches. Batches are packed
(`inputs.py`) where variable-length attention runs; padded batches go through transformers'
SDPA path, which checks on the device whether the mask masks anything, one synchronization per
batch. Tokenizer worker processes run ahead of all of it.

All of it runs with the engine's GPU as the current CUDA device (`model.device_scope`): every
public method enters it, and so do the builder and collector threads, because a completion
event, stream or pinned buffer created under another current device belongs to that device.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from itertools import pairwise

import numpy as np
import torch

from resources import settings
from resources.embedding.budget import BudgetController
from resources.embedding.inputs import BatchInputs, PackedInputs, PaddedInputs
from resources.embedding.learned import BudgetKey, LearnedBudgets
from resources.embedding.model import (
    EncoderModel,
    device_scope,
    dtype_name,
    load_model,
    packing_supported,
    read_dimension,
    read_max_length,
    resolve_device,
    resolve_dtype,
    weights_sha256,
)
from resources.embedding.oom import FaultHook, SplitOutcome, release_memory, run_splitting
from resources.embedding.overlap import Collector, built_ahead
from resources.embedding.planner import Batch, iter_batches
from resources.embedding.probe import ProbeResult, forward_trial, search_budget
from resources.embedding.stats import EmbeddingStats
from resources.embedding.tokenization import (
    Tokenized,
    TokenizerPool,
    checked,
    from_token_ids,
    spare_cpu_set,
    tokenize,
    window_sizes,
)
from resources.processes import usable_cpus
from resources.tokenizer.model_source import resolve_model_path

logger = logging.getLogger(__name__)

# Measured on a 2-core CPU with all-MiniLM-L6-v2 (BENCHMARKS.md): batches of 1,024 to 2,048
# padded tokens spent 6 to 15% less CPU per token than 8,192 (larger working sets, same work).
CPU_TOKEN_BUDGET = 2048
# Texts per tokenizer task (at most; at least), and the window sizes the length sort works over.
TOKENIZE_CHUNK = 2048
MIN_TOKENIZE_CHUNK = 128
FIRST_WINDOW = 4096
LARGEST_WINDOW = 65536
# Batches launched on the GPU whose vectors wait for the collector: a few, so that when the
# launching thread loses its core for a moment (a busy host), the GPU still has queued work.
IN_FLIGHT = 4


Progress = Callable[[int, int], None]
"""Told (texts, tokens) embedded so far in one call, after each batch: a call over a shard of a
million tokens runs for many minutes on a CPU, and its caller may want to say so."""


@dataclass(frozen=True)
class EngineConfig:
    """Settings of an engine; see EmbeddingResource for what each one means."""

    model: str = settings.embedding_model.default
    device: str = settings.embedding_device.default
    dtype: str = "auto"
    max_length: int | None = None
    token_budget: int | None = None
    batch_size: int | None = None
    min_budget: int = 512
    max_budget: int = 131072
    target_memory_fraction: float = 0.85
    tokenizer_workers: int | None = None
    data_dir: str | None = None
    profile_nvtx: bool = False
    compile: bool = False
    packed: bool | None = None


@dataclass
class EmbeddingResult:
    """Unit vectors in input order, float32 [texts, dim], and what producing them took."""

    vectors: np.ndarray
    stats: EmbeddingStats


def model_identity(config: EngineConfig, device: torch.device) -> dict[str, str | int]:
    """What vectors made with `config` on `device` depend on, read from the model's files alone:
    a step knows its checkpoints' key before it loads the model on any GPU."""
    path = resolve_model_path(config.model).resolve()
    return {
        "name": config.model,
        "sha256": weights_sha256(path),
        "dtype": dtype_name(resolve_dtype(config.dtype, device)),
        "max_length": config.max_length or read_max_length(path),
        "dim": read_dimension(path),
    }


def _on_device(method):
    """Runs an engine method with the engine's device current (see the module docstring)."""

    @functools.wraps(method)
    def scoped(self, *args, **kwargs):
        with device_scope(self.device):
            return method(self, *args, **kwargs)

    return scoped


class EmbeddingEngine:
    """Texts or token ids in, unit vectors out, in input order, whatever the device does.

    `fault_hook(rows, padded_tokens)` is called before every forward pass; tests pass one that
    raises `torch.OutOfMemoryError` (see `oom.OomAboveTokens`, `oom.OomFirstCalls`).
    """

    def __init__(self, config: EngineConfig | None = None, fault_hook: FaultHook | None = None):
        self.config = config = config or EngineConfig()
        self.device = resolve_device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_initialized():
            # Batch shapes change all the time; growable segments keep the caching allocator
            # from fragmenting near the memory limit. Read once, when CUDA starts.
            os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
        self.dtype = resolve_dtype(config.dtype, self.device)
        with device_scope(self.device):
            self.model: EncoderModel = load_model(
                config.model, self.device, self.dtype, compiled=config.compile
            )
        self.max_length = config.max_length or read_max_length(self.model.path)
        if not 2 <= self.max_length <= self.model.max_positions:
            raise ValueError(
                f"max_length {self.max_length} outside 2..{self.model.max_positions} "
                f"(the model's position table)"
            )
        self.dimension = self.model.dimension
        self.fault_hook = fault_hook
        self.learned = LearnedBudgets(
            os.path.join(config.data_dir or settings.data_dir(), "budgets")
        )
        self._cuda = self.device.type == "cuda"
        # Packed (unpadded) batches wherever variable-length attention runs, unless told.
        self.packed = (
            packing_supported(self.device, self.dtype) if config.packed is None else config.packed
        )
        self._pool: TokenizerPool | None = None
        self._builder_pool: ThreadPoolExecutor | None = None
        self._controller: BudgetController | None = None
        self._loaded_budget: int | None = None

    # -- identity -------------------------------------------------------------------------

    def model_identity(self) -> dict[str, str | int]:
        """What the vectors depend on; embedding checkpoints are keyed by it."""
        return model_identity(self.config, self.device)

    def budget_key(self) -> BudgetKey:
        gpu = torch.cuda.get_device_name(self.device) if self._cuda else "cpu"
        model = f"{self.model.path.name}@{weights_sha256(self.model.path)[:16]}"
        return BudgetKey(
            model=model, gpu=gpu, dtype=dtype_name(self.dtype), max_length=self.max_length
        )

    # -- public calls ---------------------------------------------------------------------

    @_on_device
    def embed(self, texts: Sequence[str], out: np.ndarray | None = None) -> EmbeddingResult:
        """Embed raw texts, truncated to `max_length` tokens like sentence-transformers.

        With `out` (float32 [len(texts), dimension]), the vectors are written there, for
        example into shared memory, instead of into a new array.
        """
        return self._run(self._text_windows(texts), len(texts), out)

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> EmbeddingResult:
        """Embed rows already tokenized with special tokens, each at most `max_length` long."""
        return self.embed_tokenized(from_token_ids(token_ids, self.max_length))

    @_on_device
    def embed_tokenized(
        self,
        tokenized: Tokenized,
        out: np.ndarray | None = None,
        progress: Progress | None = None,
    ) -> EmbeddingResult:
        """Like `embed_token_ids` for rows already in flat arrays (an Arrow list column's);
        `progress` is told what is embedded after each batch."""
        tokenized = checked(tokenized, self.max_length)
        return self._run(iter([(0, tokenized)]), len(tokenized.lengths), out, progress)

    @_on_device
    def probe(self, length: int | None = None, save: bool = True) -> ProbeResult:
        """Search the largest budget that fits at `length` (default: max_length) and keep it."""
        if not self._cuda:
            raise RuntimeError("the probe measures GPU memory; on the CPU there is nothing to find")
        controller = self._budget_controller()
        trial = forward_trial(
            self.model.encode,
            self.device,
            length or self.max_length,
            self.model.vocab_size,
            self._capacity_bytes(),
            self.config.target_memory_fraction,
        )
        result = search_budget(
            trial, controller.current, self.config.min_budget, self.config.max_budget
        )
        if result.budget is not None:
            controller.current = result.budget
            if save:
                self.learned.save(self.budget_key(), result.budget, "probe")
                self._loaded_budget = result.budget
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._builder_pool is not None:
            self._builder_pool.shutdown()
            self._builder_pool = None

    # -- budget ---------------------------------------------------------------------------

    def _capacity_bytes(self) -> int:
        """Memory this process may use: the device's, within any per-process cap."""
        free, total = torch.cuda.mem_get_info(self.device)
        # get_per_process_memory_fraction is recent (older torch: no way to read the cap).
        read_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
        capped = int(total * (read_fraction(self.device) if read_fraction else 1.0))
        return min(capped, free + torch.cuda.memory_reserved(self.device))

    def _estimated_budget(self) -> int:
        """Padded tokens that fit the target, from a deliberately high per-token activation cost.

        Per token: the hidden states a layer keeps alive (about 12 x hidden), the feed-forward
        intermediate twice, and fp32 attention scores per head in case the attention kernel
        materializes them.
        """
        config = self.model.module.config
        element = torch.finfo(self.dtype).bits // 8
        per_token = element * (12 * config.hidden_size + 2 * config.intermediate_size)
        per_token += 4 * config.num_attention_heads * self.max_length
        room = self.config.target_memory_fraction * self._capacity_bytes()
        room -= torch.cuda.memory_allocated(self.device)
        return int(room // per_token)

    def _budget_controller(self) -> BudgetController:
        """Created on first use: fixed budget, else learned budget, else estimate."""
        if self._controller is not None:
            return self._controller
        config = self.config
        fixed = config.token_budget
        if config.batch_size is not None and fixed is None:
            fixed = config.batch_size * self.max_length
        if fixed is not None:
            initial = fixed
        elif not self._cuda:
            initial = CPU_TOKEN_BUDGET
        else:
            learned = self.learned.load(self.budget_key())
            if learned is not None:
                self._loaded_budget = learned.token_budget
                initial = learned.token_budget
                logger.info("starting at learned budget %d (%s)", initial, learned.source)
            else:
                initial = max(config.min_budget, self._estimated_budget())
        self._controller = BudgetController(
            initial=initial,
            min_budget=min(config.min_budget, initial),
            max_budget=max(config.max_budget, initial) if fixed else config.max_budget,
            target_fraction=config.target_memory_fraction,
            adaptive=fixed is None and self._cuda,
        )
        return self._controller

    def _remember_budget(self, controller: BudgetController) -> None:
        """Persist what an adaptive run learned, when it differs from what is stored."""
        best = controller.best_safe
        if not controller.adaptive or best is None or best == self._loaded_budget:
            return
        self.learned.save(self.budget_key(), best, "adaptive")
        self._loaded_budget = best

    # -- tokenization ---------------------------------------------------------------------

    def _workers(self) -> int:
        if self.config.tokenizer_workers is not None:
            return self.config.tokenizer_workers
        # The CPU path needs every core for the forward pass; a GPU needs the CPUs to keep up.
        return max(1, min(16, usable_cpus() - 1)) if self._cuda else 0

    def _tokenizer_pool(self) -> TokenizerPool:
        if self._pool is None:
            # On a GPU the workers keep off one CPU, which the launching thread then has alone.
            cpus = spare_cpu_set() if self._cuda else None
            self._pool = TokenizerPool(self.config.model, self.max_length, self._workers(), cpus)
        return self._pool

    def _text_windows(self, texts: Sequence[str]) -> Iterator[tuple[int, Tokenized]]:
        workers = self._workers()
        windows = list(window_sizes(len(texts), FIRST_WINDOW, LARGEST_WINDOW))
        if workers == 0 or len(texts) <= TOKENIZE_CHUNK:
            for start, end in windows:
                yield start, tokenize(self.config.model, self.max_length, texts[start:end])
            return
        pool = self._tokenizer_pool()
        # Everything is queued at once; workers finish windows while the device runs earlier
        # ones. Each window is split over all workers, so the first one is ready quickly.
        futures: list[tuple[int, list[Future[Tokenized]]]] = []
        for start, end in windows:
            step = max(MIN_TOKENIZE_CHUNK, min(TOKENIZE_CHUNK, -(-(end - start) // workers)))
            parts = [pool.submit(texts[i : min(end, i + step)]) for i in range(start, end, step)]
            futures.append((start, parts))
        for start, parts in futures:
            yield start, Tokenized.concat([part.result() for part in parts])

    @_on_device
    def prepare(self) -> None:
        """Run one full-size batch, so the first real call does not pay one-off costs.

        A new CUDA process loads each kernel on its first launch and grows its memory pool batch
        by batch; both would otherwise land in the first call, which in a pipeline runs while
        the step holds the GPU pool.
        """
        if not self._cuda:
            return
        rows = max(1, self._budget_controller().current // self.max_length)
        token = min(1000, self.model.vocab_size - 1)
        ids = np.full(rows * self.max_length, token, dtype=np.int64)
        self.embed_tokenized(Tokenized(ids=ids, lengths=np.full(rows, self.max_length)))

    @_on_device
    def warm_up(self) -> None:
        """Start tokenizer workers and run first batches, so timing excludes one-off costs."""
        if self._workers() > 0:
            self._tokenizer_pool().warm_up()
        self.prepare()
        self.embed(["warm up"] * 8)

    # -- the loop -------------------------------------------------------------------------

    def _ranges(self) -> Callable[[str], AbstractContextManager]:
        if self.config.profile_nvtx and self._cuda:
            return torch.cuda.nvtx.range
        return lambda _name: nullcontext()

    def _builder(self) -> ThreadPoolExecutor | None:
        """The thread that builds the next batch's inputs on a GPU (the CPU runs them inline)."""
        if self._cuda and self._builder_pool is None:
            # Pinning host memory goes through the current device's context: this one's.
            self._builder_pool = ThreadPoolExecutor(
                1,
                thread_name_prefix="embedding-inputs",
                initializer=torch.cuda.set_device,
                initargs=(self.device,),
            )
        return self._builder_pool

    def _inputs(self, tokenized: Tokenized, offsets: np.ndarray, batch: Batch) -> BatchInputs:
        if self.packed:
            return PackedInputs(tokenized, offsets, batch, pin=self._cuda)
        multiple = 8 if self._cuda else 1
        return PaddedInputs(tokenized, offsets, batch, self._cuda, multiple, self.max_length)

    def _embed_batch(
        self,
        inputs: BatchInputs,
        controller: BudgetController,
        stats: EmbeddingStats,
        timings: list[tuple[torch.cuda.Event, torch.cuda.Event]],
    ) -> SplitOutcome[torch.Tensor]:
        """One planned batch through the OOM policy; on a GPU the results may still be in flight."""
        mark = self._ranges()

        def forward(start: int, end: int) -> torch.Tensor:
            if self.fault_hook is not None:
                self.fault_hook(end - start, inputs.cost(start, end))
            if not self._cuda:
                began = time.perf_counter()
                out = inputs.encode(self.model, start, end, mark)
                stats.device_seconds += time.perf_counter() - began
                return out
            stream = torch.cuda.current_stream(self.device)
            began, ended = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            began.record(stream)
            out = inputs.encode(self.model, start, end, mark)
            with mark("copy-out"):
                host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
                host.copy_(out, non_blocking=True)
            ended.record(stream)
            timings.append((began, ended))
            return host

        def fallback(row: int) -> torch.Tensor:
            # Exact fp32 on the CPU, trimmed to the row's own length.
            cpu_model = load_model(self.config.model, torch.device("cpu"), torch.float32)
            ids = inputs.row_ids(row)[None]
            return cpu_model.encode(ids, torch.ones_like(ids))

        def on_oom(start: int, end: int) -> None:
            release_memory(self.device)
            budget = controller.on_oom(inputs.cost(start, end))
            logger.warning(
                "out of memory on %d rows (%d tokens); retrying in halves, budget now %d",
                end - start,
                inputs.cost(start, end),
                budget,
            )

        return run_splitting(inputs.batch.rows, forward, fallback, on_oom)

    def _waited_for(
        self, windows: Iterator[tuple[int, Tokenized]], stats: EmbeddingStats
    ) -> Iterator[tuple[int, Tokenized]]:
        """The windows, with the time spent waiting for each counted as `tokenize_wait_seconds`."""
        mark = self._ranges()
        while True:
            waited = time.perf_counter()
            with mark("tokenize-wait"):
                item = next(windows, None)
            stats.tokenize_wait_seconds += time.perf_counter() - waited
            if item is None:
                return
            yield item

    def _run(
        self,
        windows: Iterator[tuple[int, Tokenized]],
        count: int,
        out: np.ndarray | None,
        progress: Progress | None = None,
    ) -> EmbeddingResult:
        started = time.perf_counter()
        stats = EmbeddingStats(
            device=str(self.device), dtype=dtype_name(self.dtype), texts=count, packed=self.packed
        )
        if out is not None and out.shape != (count, self.dimension):
            raise ValueError(f"out has shape {out.shape}, not {(count, self.dimension)}")
        vectors = np.empty((count, self.dimension), dtype=np.float32) if out is None else out
        controller = self._budget_controller()
        cuda = self._cuda
        device = self.device
        base_bytes = capacity = 0
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            base_bytes = torch.cuda.memory_allocated(device)
            capacity = self._capacity_bytes()
        timings: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        embedded_texts = embedded_tokens = 0

        def budget() -> int:
            # The planner asks once per batch, so this records the budget each batch was cut with.
            stats.budgets.append(controller.current)
            return controller.current

        with Collector(vectors, IN_FLIGHT, threaded=cuda, device=device) as collector:
            for offset, tokenized in self._waited_for(windows, stats):
                stats.tokens += int(tokenized.lengths.sum())
                stats.tokenize_seconds += tokenized.seconds
                offsets = tokenized.offsets
                batches = iter_batches(
                    tokenized.lengths,
                    budget,
                    max_rows=self.config.batch_size,
                    # Tensor cores want padded widths in multiples of 8; packed rows have none.
                    pad_multiple=8 if cuda and not self.packed else 1,
                    limit=self.max_length,
                )
                build = partial(self._inputs, tokenized, offsets)
                for batch, inputs in built_ahead(batches, build, self._builder()):
                    outcome = self._embed_batch(inputs, controller, stats, timings)
                    rows = offset + batch.indices
                    for row in outcome.fallback_rows:
                        logger.warning(
                            "text %d embedded on the CPU: it alone ran out of memory",
                            int(rows[row]),
                        )
                        stats.cpu_fallback_indices.append(int(rows[row]))
                    stats.ooms_recovered += outcome.ooms
                    stats.batches += 1
                    stats.padded_tokens += batch.tokens if self.packed else batch.padded_tokens
                    done = None
                    if cuda:
                        done = torch.cuda.Event()
                        done.record(torch.cuda.current_stream(device))
                        peak = torch.cuda.max_memory_allocated(device)
                        stats.peak_device_memory_bytes = max(stats.peak_device_memory_bytes, peak)
                        if outcome.ooms == 0:
                            controller.on_success(batch.padded_tokens, peak, base_bytes, capacity)
                        torch.cuda.reset_peak_memory_stats(device)
                    collector.put(done, outcome.pieces, rows)
                    if progress is not None:
                        embedded_texts += batch.rows
                        embedded_tokens += batch.tokens
                        progress(embedded_texts, embedded_tokens)
        if cuda:
            torch.cuda.synchronize(device)
            stats.device_seconds = sum(b.elapsed_time(e) for b, e in timings) / 1000.0
            # A batch's start event runs as soon as the previous batch ends unless the host had
            # not launched it yet: the gap is time the device waited for the host.
            gaps = (ended.elapsed_time(began) for (_, ended), (began, _) in pairwise(timings))
            stats.device_idle_seconds = sum(max(0.0, gap) for gap in gaps) / 1000.0
            self._remember_budget(controller)
        stats.final_budget = controller.current
        stats.wall_seconds = time.perf_counter() - started
        return EmbeddingResult(vectors=vectors, stats=stats)
