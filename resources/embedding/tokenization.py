"""Tokenization into flat id arrays, in this process or in a pool of worker processes.

Several processes rather than one call of the fast tokenizer: its Rust side parallelizes a batch,
but turning each encoding into Python ids holds the GIL, which for short texts caps one process
far below what a GPU consumes. Results travel as two numpy arrays (flat ids, lengths), which
pickle as raw buffers instead of millions of Python ints.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from tokenizers import Tokenizer

from resources.tokenizer.model_source import load_tokenizer
from resources.tokenizer.wordpiece import AsciiWordPiece


@dataclass(frozen=True)
class Tokenized:
    """Token ids of consecutive texts: row i is ids[offsets[i]:offsets[i] + lengths[i]]."""

    ids: np.ndarray
    lengths: np.ndarray
    seconds: float = 0.0

    @property
    def offsets(self) -> np.ndarray:
        offsets = np.zeros(len(self.lengths), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=offsets[1:])
        return offsets

    def rows(self, start: int, end: int) -> Tokenized:
        """Rows start..end as their own `Tokenized`, sharing this one's memory."""
        first = int(self.lengths[:start].sum())
        last = first + int(self.lengths[start:end].sum())
        return Tokenized(ids=self.ids[first:last], lengths=self.lengths[start:end])

    @staticmethod
    def concat(parts: Sequence[Tokenized]) -> Tokenized:
        if len(parts) == 1:
            return parts[0]
        return Tokenized(
            ids=np.concatenate([p.ids for p in parts]),
            lengths=np.concatenate([p.lengths for p in parts]),
            seconds=sum(p.seconds for p in parts),
        )


@lru_cache(maxsize=8)
def truncating_tokenizer(model: str, max_length: int) -> Tokenizer:
    """A private copy of the model's tokenizer that cuts at `max_length`, special tokens included.

    A copy, because the shared one from `load_tokenizer` is used untruncated by the chunker.
    """
    tokenizer = Tokenizer.from_str(load_tokenizer(model).to_str())
    tokenizer.enable_truncation(max_length)
    return tokenizer


@lru_cache(maxsize=8)
def ascii_wordpiece(model: str, max_length: int) -> AsciiWordPiece | None:
    return AsciiWordPiece.for_tokenizer(truncating_tokenizer(model, max_length), max_length)


def tokenize(model: str, max_length: int, texts: Sequence[str]) -> Tokenized:
    """Tokenize `texts` with special tokens, truncated to `max_length`.

    ASCII texts take the cached path of `wordpiece.py` when the tokenizer allows it; the rest go
    to the library in one batch.
    """
    started = time.perf_counter()
    fast = ascii_wordpiece(model, max_length)
    rows = fast.encode(texts) if fast else [None] * len(texts)
    left = [i for i, row in enumerate(rows) if row is None]
    if left:
        tokenizer = truncating_tokenizer(model, max_length)
        # The fast variant skips character offsets, which embedding never needs (tokenizers>=0.21).
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        for i, encoding in zip(left, encode([texts[i] for i in left]), strict=True):
            rows[i] = encoding.ids
    lengths = np.fromiter(map(len, rows), dtype=np.int32, count=len(rows))
    ids = np.fromiter(
        itertools.chain.from_iterable(rows),
        dtype=np.int32,
        count=int(lengths.sum()),
    )
    return Tokenized(ids=ids, lengths=lengths, seconds=time.perf_counter() - started)


def from_token_ids(token_ids: Sequence[Sequence[int]], max_length: int) -> Tokenized:
    """Pre-tokenized rows (special tokens included) as flat arrays, checked against the limit."""
    lengths = np.fromiter((len(row) for row in token_ids), dtype=np.int32, count=len(token_ids))
    if len(token_ids) and isinstance(token_ids[0], np.ndarray):
        ids = np.concatenate(token_ids).astype(np.int32, copy=False)
    else:
        ids = np.fromiter(
            itertools.chain.from_iterable(token_ids), dtype=np.int32, count=int(lengths.sum())
        )
    return checked(Tokenized(ids=ids, lengths=lengths), max_length)


def checked(tokenized: Tokenized, max_length: int) -> Tokenized:
    """`tokenized` itself, once every row is known to be non-empty and within `max_length`."""
    lengths = tokenized.lengths
    if len(lengths) and int(lengths.max()) > max_length:
        worst = int(np.argmax(lengths))
        raise ValueError(
            f"token_ids[{worst}] has {int(lengths[worst])} tokens, more than max_length "
            f"{max_length}; cut inputs to the model window before embedding"
        )
    if len(lengths) and int(lengths.min()) == 0:
        raise ValueError(f"token_ids[{int(np.argmin(lengths))}] is empty")
    return tokenized


def spare_cpu_set() -> list[int] | None:
    """The CPUs tokenizer workers may use: all of this process's but one, where it has four or
    more.

    Measured on an H100 machine with 16 CPUs: the thread that launches GPU batches is what end
    to end waits on, and a tokenizer on every CPU keeps preempting it. With one CPU left to it
    (and the workers kept off that one) end to end ran 8% faster, and the workers themselves
    spent 40% less CPU time per token, moving between CPUs less. Lowering the workers' priority
    instead did not help (BENCHMARKS.md).
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[1:] if len(cpus) >= 4 else None


def _init_worker(cpus: list[int] | None) -> None:
    # One process per core already; the tokenizer's own thread pool would oversubscribe.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


class TokenizerPool:
    """Worker processes that tokenize chunks of texts ahead of the device, on `cpus` if given.

    Started with `spawn`: a forked child of a process that has initialized CUDA is unusable.
    """

    def __init__(
        self, model: str, max_length: int, workers: int, cpus: list[int] | None = None
    ) -> None:
        self.model = model
        self.max_length = max_length
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(cpus,),
        )

    def submit(self, texts: Sequence[str]) -> Future[Tokenized]:
        return self._executor.submit(tokenize, self.model, self.max_length, list(texts))

    def warm_up(self) -> None:
        """Start every worker and load its tokenizer, so the first real call pays nothing."""
        for future in [self.submit(["warm up"]) for _ in range(self.workers)]:
            future.result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def window_sizes(total: int, first: int, largest: int) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive windows that double from `first` up to `largest` texts, and
    halve again towards the end.

    The device starts as soon as the small first window is tokenized, while later, larger
    windows give the length sort more texts to pack. A window reaches the device only once all of
    it is tokenized, so what the device still has to do after the tokenizers finish is the last
    window: taking at most half of what is left keeps that window small.
    """
    start, size = 0, first
    while start < total:
        end = min(total, start + min(size, max(first, -(-(total - start) // 2))))
        yield start, end
        start, size = end, min(largest, size * 2)
