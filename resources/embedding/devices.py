"""Several devices at once: one engine per device, each in a process of its own, work split by
tokens.

Processes rather than threads, so each engine's host side (padding, planning, launching kernels)
has an interpreter of its own instead of sharing one GIL with the others. A call is cut into one
contiguous range of rows per device with about the same number of tokens, so every device is busy
for about as long, and the ranges' vectors concatenate back in input order.

Each worker runs on a CPU set of its own (its share of this process's), so its tokenizer
processes, which it starts itself, and its launching thread do not compete with another
device's. Token arrays go to the workers and vectors come back through shared memory: at
millions of rows, pickling them through pipes would copy gigabytes twice on the way.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.util import Finalize
from typing import Any

import numpy as np
import torch

from resources.embedding.engine import EmbeddingEngine, EmbeddingResult, EngineConfig, Progress
from resources.embedding.probe import ProbeResult
from resources.embedding.stats import EmbeddingStats
from resources.embedding.tokenization import Tokenized, checked, from_token_ids

# A worker asked to close that has not exited by then is terminated.
CLOSE_SECONDS = 30


def device_list(device: str) -> list[str]:
    """The devices a `device` setting splits each call over.

    "all" means every visible GPU (the CPU without one); a comma-separated list names each
    device ("cuda:0,cuda:2", or "cpu,cpu", which runs the same code without a GPU). Any other
    setting is one device.
    """
    if "," in device:
        return [name.strip() for name in device.split(",") if name.strip()]
    if device == "all":
        count = torch.cuda.device_count()
        return [f"cuda:{index}" for index in range(count)] if count else ["cpu"]
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


def split_cpus(parts: int) -> list[list[int] | None]:
    """This process's CPUs cut into `parts` contiguous sets, one per worker.

    Contiguous, so a worker's CPUs tend to share caches. With fewer CPUs than workers (or no
    affinity on this platform) every worker gets None: all of them, shared.
    """
    if not hasattr(os, "sched_getaffinity"):
        return [None] * parts
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < parts:
        return [None] * parts
    bounds = np.linspace(0, len(cpus), parts + 1).astype(int)
    return [cpus[a:b] for a, b in itertools.pairwise(bounds)]


class _Shared:
    """A numpy array in shared memory that worker processes attach to by name."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, name: str | None = None):
        self.shape, self.dtype = shape, np.dtype(dtype)
        size = max(1, int(np.prod(shape)) * self.dtype.itemsize)
        self.memory = SharedMemory(name=name, create=name is None, size=size)
        self.array: np.ndarray = np.ndarray(shape, self.dtype, buffer=self.memory.buf)

    @property
    def handle(self) -> tuple[str, tuple[int, ...], str]:
        return self.memory.name, self.shape, self.dtype.str

    @classmethod
    @contextlib.contextmanager
    def attached(cls, handle: tuple[str, tuple[int, ...], str]) -> Iterator[np.ndarray]:
        shared = cls(handle[1], np.dtype(handle[2]), name=handle[0])
        try:
            yield shared.array
        finally:
            shared.close()

    def close(self) -> None:
        del self.array  # the buffer cannot be released while a view of it exists
        self.memory.close()

    def discard(self) -> None:
        self.close()
        self.memory.unlink()


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
        self._processes: list[multiprocessing.process.BaseProcess] = []
        # Not daemons: a daemon process may not start children, and each worker starts its
        # tokenizer processes. Closed when this object goes, or before the interpreter waits
        # for its children at exit; a worker whose parent dies reads the end of its pipe.
        self._finalizer = Finalize(
            self, _close_workers, (self._connections, self._processes), exitpriority=10
        )
        for device, cpus in zip(self.devices, split_cpus(len(self.devices)), strict=True):
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(replace(config, device=device), child, cpus),
                name=f"embedding-{device}",
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

    # -- the EmbeddingEngine interface ----------------------------------------------------

    def model_identity(self) -> dict[str, str | int]:
        return dict(self._identity)

    def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        """Raw texts, split by characters: their tokens are not known before tokenizing."""
        weights = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        ranges = split_by_weight(weights, len(self.devices))
        return self._embed(lambda a, b: ("texts", list(texts[a:b])), ranges)

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> EmbeddingResult:
        return self.embed_tokenized(from_token_ids(token_ids, self.max_length))

    def embed_tokenized(
        self, tokenized: Tokenized, progress: Progress | None = None
    ) -> EmbeddingResult:
        """`progress` is told once, when every device is done: each device embeds its part in
        one call of its own process, and a shard split over several GPUs takes seconds."""
        tokenized = checked(tokenized, self.max_length)
        result = self._embed_tokenized(tokenized)
        if progress is not None:
            progress(result.stats.texts, result.stats.tokens)
        return result

    def _embed_tokenized(self, tokenized: Tokenized) -> EmbeddingResult:
        """The rows split between the devices by tokens, handed over in shared memory."""
        ranges = split_by_weight(tokenized.lengths, len(self.devices))
        if not ranges:
            return self._embed(None, ranges)
        ids = _Shared(tokenized.ids.shape, np.int32)
        lengths = _Shared(tokenized.lengths.shape, np.int32)
        try:
            ids.array[:] = tokenized.ids
            lengths.array[:] = tokenized.lengths
            firsts = np.zeros(len(tokenized.lengths) + 1, dtype=np.int64)
            np.cumsum(tokenized.lengths, out=firsts[1:])

            def message(a: int, b: int) -> tuple[str, Any]:
                rows = (ids.handle, int(firsts[a]), int(firsts[b]), lengths.handle, a, b)
                return "tokens", rows

            return self._embed(message, ranges)
        finally:
            ids.discard()
            lengths.discard()

    def probe(self, length: int | None = None, save: bool = True) -> ProbeResult:
        """Probe every device (each keeps its own learned budget); the first one's result."""
        results = self._gather([(i, ("probe", (length, save))) for i in range(len(self.devices))])
        return results[0]

    def prepare(self) -> None:
        self._gather([(i, ("prepare", None)) for i in range(len(self.devices))])

    def warm_up(self) -> None:
        self._gather([(i, ("warm_up", None)) for i in range(len(self.devices))])

    def close(self) -> None:
        self._finalizer()

    # -- plumbing -------------------------------------------------------------------------

    def _embed(
        self,
        message: Callable[[int, int], tuple[str, Any]] | None,
        ranges: list[tuple[int, int]],
    ) -> EmbeddingResult:
        """Each worker embeds its range with `message(start, end)`, into one shared array."""
        started = time.perf_counter()
        if message is None or not ranges:
            empty = np.empty((0, self.dimension), dtype=np.float32)
            return EmbeddingResult(empty, EmbeddingStats(device=",".join(self.devices), dtype=""))
        out = _Shared((ranges[-1][1], self.dimension), np.float32)
        try:
            work = []
            for worker, (start, end) in enumerate(ranges):
                kind, payload = message(start, end)
                work.append((worker, (kind, (payload, out.handle, start, end))))
            results: list[EmbeddingStats] = self._gather(work)
            vectors = out.array.copy()
        finally:
            out.discard()
        stats = EmbeddingStats.combined(
            [(start, part) for (start, _), part in zip(ranges, results, strict=True)],
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


def _close_workers(connections: list[Connection], processes: list) -> None:
    for connection, process in zip(connections, processes, strict=True):
        if process.is_alive():
            # A worker that has just failed may exit between the check and the send.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.send(("close", None))
    for connection, process in zip(connections, processes, strict=True):
        process.join(timeout=CLOSE_SECONDS)
        if process.is_alive():
            process.terminate()
            process.join()
        connection.close()
    connections.clear()
    processes.clear()


def _embed_range(engine: EmbeddingEngine, kind: str, payload: tuple) -> EmbeddingStats:
    """One worker's part of a call: its rows in, its vectors written into the shared output."""
    inputs, out_handle, start, end = payload
    with _Shared.attached(out_handle) as out:
        if kind == "texts":
            return engine.embed(inputs, out=out[start:end]).stats
        ids_handle, first, last, lengths_handle, a, b = inputs
        with _Shared.attached(ids_handle) as ids, _Shared.attached(lengths_handle) as lengths:
            part = Tokenized(ids=ids[first:last], lengths=lengths[a:b])
            return engine.embed_tokenized(part, out=out[start:end]).stats


def _serve(config: EngineConfig, connection: Connection, cpus: list[int] | None) -> None:
    """A worker: one engine on one device, answering messages until told to close."""
    try:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)  # its tokenizer processes inherit the set
            if config.device == "cpu":
                torch.set_num_threads(len(cpus))
        engine = EmbeddingEngine(config)
        connection.send(("ok", (engine.dimension, engine.max_length, engine.model_identity())))
    except BaseException:
        connection.send(("error", traceback.format_exc()))
        return
    handlers = {
        "texts": lambda payload: _embed_range(engine, "texts", payload),
        "tokens": lambda payload: _embed_range(engine, "tokens", payload),
        "probe": lambda payload: engine.probe(*payload),
        "prepare": lambda _payload: engine.prepare(),
        "warm_up": lambda _payload: engine.warm_up(),
    }
    try:
        while True:
            try:
                kind, payload = connection.recv()
            except EOFError:  # the parent is gone
                return
            if kind == "close":
                return
            try:
                connection.send(("ok", handlers[kind](payload)))
            except BaseException:
                connection.send(("error", traceback.format_exc()))
    finally:
        engine.close()
