"""Several devices at once: one engine per device, each in a process of its own, work split by
tokens.

Processes rather than threads, so each engine's host side (padding, planning, launching kernels)
has an interpreter of its own instead of sharing one GIL with the others. A call is cut into one
contiguous range of rows per device with about the same number of tokens, so every device is busy
for about as long, and the ranges' vectors concatenate back in input order.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
import torch

from resources.embedding.engine import EmbeddingEngine, EmbeddingResult, EngineConfig
from resources.embedding.probe import ProbeResult
from resources.embedding.stats import EmbeddingStats
from resources.embedding.tokenization import Tokenized, checked, from_token_ids


def device_list(device: str) -> list[str]:
    """The devices a `device` setting names.

    "cuda" and "auto" mean every visible GPU; a comma-separated list names each device
    ("cuda:0,cuda:2", or "cpu,cpu", which runs the same code without a GPU).
    """
    if "," in device:
        return [name.strip() for name in device.split(",") if name.strip()]
    if device in ("cuda", "auto") and torch.cuda.device_count() > 1:
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return [device]


def split_by_weight(weights: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Contiguous (start, end) row ranges of about equal total weight, in input order.

    The weight is a row's tokens: the device time of a row grows with its tokens, not with the
    number of rows. Ranges that would be empty are left out.
    """
    if len(weights) == 0:
        return []
    cumulative = np.cumsum(weights, dtype=np.int64)
    targets = cumulative[-1] * np.arange(1, parts) / parts
    cuts = np.minimum(np.searchsorted(cumulative, targets, side="left") + 1, len(weights))
    bounds = [0, *cuts.tolist(), len(weights)]
    return [(start, end) for start, end in itertools.pairwise(bounds) if end > start]


class MultiDeviceEngine:
    """The `EmbeddingEngine` interface over one engine per device.

    Each worker owns its model, budget controller, learned budget, OOM recovery and tokenizer
    processes, exactly as a single engine does; this class only splits, sends and gathers.
    """

    def __init__(self, config: EngineConfig, devices: Sequence[str]) -> None:
        self.config = config
        self.devices = list(devices)
        context = multiprocessing.get_context("spawn")  # fork is unusable once CUDA started
        self._connections: list[Connection] = []
        self._processes = []
        for device in self.devices:
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(self._worker_config(device), child, self._cpu_threads(device)),
                name=f"embedding-{device}",
                daemon=True,
            )
            process.start()
            child.close()
            self._connections.append(parent)
            self._processes.append(process)
        try:
            ready = self._gather([(i, None) for i in range(len(self.devices))])
        except BaseException:
            self.close()
            raise
        self.dimension, self.max_length, self._identity = ready[0]

    def _worker_config(self, device: str) -> EngineConfig:
        workers = self.config.tokenizer_workers
        if workers is None and device.startswith("cuda"):
            # The cores are shared: each device's tokenizer processes get their part of them.
            workers = max(1, (os.cpu_count() or 2) // len(self.devices) - 1)
        return replace(self.config, device=device, tokenizer_workers=workers)

    def _cpu_threads(self, device: str) -> int | None:
        """Engines sharing the CPU share its cores rather than each taking all of them."""
        return max(1, (os.cpu_count() or 1) // len(self.devices)) if device == "cpu" else None

    # -- the EmbeddingEngine interface ----------------------------------------------------

    def model_identity(self) -> dict[str, str | int]:
        return dict(self._identity)

    def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        """Raw texts, split by characters: their tokens are not known before tokenizing."""
        weights = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        ranges = split_by_weight(weights, len(self.devices))
        return self._embed([("texts", list(texts[a:b])) for a, b in ranges], ranges)

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> EmbeddingResult:
        return self.embed_tokenized(from_token_ids(token_ids, self.max_length))

    def embed_tokenized(self, tokenized: Tokenized) -> EmbeddingResult:
        tokenized = checked(tokenized, self.max_length)
        ranges = split_by_weight(tokenized.lengths, len(self.devices))
        parts = [tokenized.rows(a, b) for a, b in ranges]
        return self._embed([("tokens", (p.ids, p.lengths)) for p in parts], ranges)

    def probe(self, length: int | None = None, save: bool = True) -> ProbeResult:
        """Probe every device (each keeps its own learned budget); the first one's result."""
        results = self._gather([(i, ("probe", (length, save))) for i in range(len(self.devices))])
        return results[0]

    def prepare(self) -> None:
        self._gather([(i, ("prepare", None)) for i in range(len(self.devices))])

    def warm_up(self) -> None:
        self._gather([(i, ("warm_up", None)) for i in range(len(self.devices))])

    def close(self) -> None:
        for connection, process in zip(self._connections, self._processes, strict=True):
            if process.is_alive():
                # A worker that has just failed may exit between the check and the send.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    connection.send(("close", None))
            process.join(timeout=30)
            connection.close()
        self._connections, self._processes = [], []

    # -- plumbing -------------------------------------------------------------------------

    def _embed(
        self, messages: list[tuple[str, Any]], ranges: list[tuple[int, int]]
    ) -> EmbeddingResult:
        started = time.perf_counter()
        if not ranges:
            empty = np.empty((0, self.dimension), dtype=np.float32)
            return EmbeddingResult(empty, EmbeddingStats(device=",".join(self.devices), dtype=""))
        count = ranges[-1][1]
        vectors = np.empty((count, self.dimension), dtype=np.float32)
        results: list[EmbeddingResult] = self._gather(list(enumerate(messages)))
        for (start, end), result in zip(ranges, results, strict=True):
            vectors[start:end] = result.vectors
        stats = EmbeddingStats.combined(
            [(start, result.stats) for (start, _), result in zip(ranges, results, strict=True)],
            wall_seconds=time.perf_counter() - started,
        )
        return EmbeddingResult(vectors=vectors, stats=stats)

    def _gather(self, work: list[tuple[int, Any]]) -> list[Any]:
        """Send each worker its message (None: just wait for it), then collect every answer.

        Answers are read as they come, so a worker that finished early does not wait on one that
        has not. The first failure is raised once every worker has answered.
        """
        for worker, message in work:
            if message is not None:
                self._connections[worker].send(message)
        answers: dict[int, Any] = {}
        errors: list[str] = []
        pending = {self._connections[worker]: worker for worker, _ in work}
        while pending:
            for connection in wait(list(pending)):
                worker = pending.pop(connection)
                try:
                    status, answer = connection.recv()
                except EOFError:
                    status, answer = "error", "the worker process exited"
                if status == "error":
                    errors.append(f"embedding worker on {self.devices[worker]} failed:\n{answer}")
                answers[worker] = answer
        if errors:
            raise RuntimeError("\n".join(errors))
        return [answers[worker] for worker, _ in work]


def _serve(config: EngineConfig, connection: Connection, cpu_threads: int | None) -> None:
    """A worker: one engine on one device, answering messages until told to close."""
    try:
        if cpu_threads is not None:
            torch.set_num_threads(cpu_threads)
        engine = EmbeddingEngine(config)
        connection.send(("ok", (engine.dimension, engine.max_length, engine.model_identity())))
    except BaseException:
        connection.send(("error", traceback.format_exc()))
        return
    handlers = {
        "texts": engine.embed,
        "tokens": lambda payload: engine.embed_tokenized(Tokenized(*payload)),
        "probe": lambda payload: engine.probe(*payload),
        "prepare": lambda _payload: engine.prepare(),
        "warm_up": lambda _payload: engine.warm_up(),
    }
    while True:
        kind, payload = connection.recv()
        if kind == "close":
            engine.close()
            return
        try:
            connection.send(("ok", handlers[kind](payload)))
        except BaseException:
            connection.send(("error", traceback.format_exc()))
