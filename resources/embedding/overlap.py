"""Host work taken off the thread that launches the GPU's batches.

Once tokenization runs in other processes, end-to-end throughput is bounded by the launching
thread: any moment it spends elsewhere, the GPU may sit idle. Profiled on an H100 under a full
tokenizer pool, it spent longer building batches' inputs (gathers into pinned memory) and
putting finished vectors back into input order than launching, and the GPU idled between
batches. Both are numpy and torch calls that release the GIL, so on threads of their own they
run beside the launches rather than between them (BENCHMARKS.md: end to end 5.5 to 7.5 M
tokens/s in one A/B).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import TypeVar

import numpy as np
import torch

Built = TypeVar("Built")
Item = TypeVar("Item")


def built_ahead(
    items: Iterator[Item], build: Callable[[Item], Built], executor: Executor | None
) -> Iterator[tuple[Item, Built]]:
    """Each item with what `build` makes of it; the next item is built on `executor` while the
    caller works on this one (inline without an executor).

    The next item is taken from `items` one step early: a planner that reads an adaptive budget
    cuts it with the budget of one batch before (an out-of-memory error the batch then meets
    is recovered like any other).
    """
    if executor is None:
        for item in items:
            yield item, build(item)
        return
    pending: tuple[Item, Future[Built]] | None = None
    for item in items:
        future = executor.submit(build, item)
        if pending is not None:
            yield pending[0], pending[1].result()
        pending = (item, future)
    if pending is not None:
        yield pending[0], pending[1].result()


class Collector:
    """Writes finished batches' vectors into `vectors` at their input rows.

    Threaded (on a GPU), it waits for each batch's completion event and copies on a thread of
    its own, with `device` current there as in the launching thread; `put` blocks while `depth`
    batches wait, which bounds the pinned memory in flight. Inline (on the CPU, where nothing
    runs asynchronously), `put` copies at once.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        depth: int,
        threaded: bool,
        device: torch.device | None = None,
    ) -> None:
        self._vectors = vectors
        self._device = device
        self._error: BaseException | None = None
        self._queue: queue.Queue[tuple | None] | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(
                target=self._drain, name="embedding-collector", daemon=True
            )
            self._thread.start()

    def put(
        self, done: torch.cuda.Event | None, pieces: list[torch.Tensor], rows: np.ndarray
    ) -> None:
        if self._queue is None:
            self._store(done, pieces, rows)
            return
        self._check()
        self._queue.put((done, pieces, rows))

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        """Waits until every vector is written; re-raises a copy failure unless one is already
        on its way up."""
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
        if error is None:
            self._check()

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError("copying vectors back from the device failed") from self._error

    def _store(
        self, done: torch.cuda.Event | None, pieces: list[torch.Tensor], rows: np.ndarray
    ) -> None:
        if done is not None:
            done.synchronize()
        self._vectors[rows] = torch.cat(pieces).numpy()

    def _drain(self) -> None:
        assert self._queue is not None
        if self._device is not None and self._device.type == "cuda":
            torch.cuda.set_device(self._device)  # the current device is per thread
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep taking items, so that `put` never waits on a dead thread
            try:
                self._store(*item)
            except BaseException as exc:  # handed to the launching thread by `_check`
                self._error = exc
