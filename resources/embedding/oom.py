"""Out-of-memory policy: split the batch and retry, never drop, reorder or zero-fill a row.

Also the fault hooks that let tests (and the GPU check) provoke out-of-memory errors on demand.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

T = TypeVar("T")

# Called before every forward pass with (rows, padded tokens); raises to simulate a failure.
FaultHook = Callable[[int, int], None]

_CUDA_ALLOCATION_FAILURES = ("CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED")


def is_oom(exc: BaseException) -> bool:
    """Whether `exc` means the device ran out of memory.

    cuBLAS and cuDNN report their own workspace allocation failures as plain RuntimeErrors.
    """
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(
        marker in str(exc) for marker in _CUDA_ALLOCATION_FAILURES
    )


def release_memory(device: torch.device) -> None:
    """Give cached blocks back after a failure so the retry starts from a clean allocator."""
    gc.collect()
    if device.type == "cuda":
        with torch.cuda.device(device):  # empty_cache frees the current device's cache
            torch.cuda.empty_cache()


@dataclass
class SplitOutcome(Generic[T]):
    """Results of one batch, in row order, and what it took to get them."""

    pieces: list[T] = field(default_factory=list)
    ooms: int = 0
    fallback_rows: list[int] = field(default_factory=list)


def run_splitting(
    rows: int,
    forward: Callable[[int, int], T],
    fallback: Callable[[int], T],
    on_oom: Callable[[int, int], None],
) -> SplitOutcome[T]:
    """Run `forward(start, end)` over rows [0, rows), halving any range that runs out of memory.

    A single row that still fails goes to `fallback(row)` (the CPU). Ranges are processed left
    to right through an explicit stack, so the pieces come back in row order however many
    failures happen in a row. Recovery (`on_oom`) runs after the `except` block has ended: the
    exception's traceback keeps the failed pass's tensors alive until then.
    """
    outcome: SplitOutcome[T] = SplitOutcome()
    pending = [(0, rows)]
    while pending:
        start, end = pending.pop()
        failed = False
        try:
            outcome.pieces.append(forward(start, end))
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_oom(exc):
                raise
            failed = True
        if not failed:
            continue
        outcome.ooms += 1
        on_oom(start, end)
        if end - start == 1:
            outcome.pieces.append(fallback(start))
            outcome.fallback_rows.append(start)
        else:
            middle = (start + end) // 2
            pending.append((middle, end))
            pending.append((start, middle))
    return outcome


class OomAboveTokens:
    """Fault hook: every pass over more than `max_padded_tokens` padded tokens runs out."""

    def __init__(self, max_padded_tokens: int) -> None:
        self.max_padded_tokens = max_padded_tokens
        self.raised = 0

    def __call__(self, rows: int, padded_tokens: int) -> None:
        if padded_tokens > self.max_padded_tokens:
            self.raised += 1
            raise torch.OutOfMemoryError(
                f"injected: {padded_tokens} padded tokens > {self.max_padded_tokens}"
            )


class OomFirstCalls:
    """Fault hook: the first `calls` passes run out of memory, whatever their size."""

    def __init__(self, calls: int) -> None:
        self.remaining = calls
        self.raised = 0

    def __call__(self, rows: int, padded_tokens: int) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            self.raised += 1
            raise torch.OutOfMemoryError(f"injected: call {self.raised}")
