"""Token-budget batch packing.

A batch's cost on the device is its padded size (rows x longest row), not its row count, so
batches are cut by a budget of padded tokens over texts sorted by length: neighbours have about
the same length and padding stays small. This is the policy of text-embeddings-inference's queue
(`core/src/queue.rs`: a padded model stops adding entries once `max_len * (n + 1)` would pass
`max_batch_tokens`), applied offline to a whole sorted input instead of a live queue.

Pure functions over lengths: no torch, so tests and benchmarks can reason about plans directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

# Largest share of a row that may be padding before the row starts a new batch.
MAX_PADDING = 0.5


@dataclass(frozen=True)
class Batch:
    """Rows of one forward pass, as positions in the caller's input; `tokens`: their real
    tokens (what a packed batch, which has no padding, costs)."""

    indices: np.ndarray
    padded_length: int
    tokens: int

    @property
    def rows(self) -> int:
        return len(self.indices)

    @property
    def padded_tokens(self) -> int:
        return self.rows * self.padded_length


def length_order(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """Input positions, longest first; ties keep input order so plans are reproducible.

    Longest first puts the most memory-hungry batch at the start, where an out-of-memory error
    costs least and teaches the budget controller early.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.argsort(-lengths, kind="stable")


def padded_length(length: int, multiple: int = 1, limit: int | None = None) -> int:
    """Round a batch's length up so matrix shapes suit tensor cores (multiple of 8 on GPUs).

    Never past `limit` (the model's maximum length), which may not be a multiple itself.
    """
    rounded = -(-length // multiple) * multiple
    return rounded if limit is None else max(length, min(rounded, limit))


def take_batch(
    sorted_lengths: np.ndarray,
    start: int,
    token_budget: int,
    max_rows: int | None = None,
    pad_multiple: int = 1,
    limit: int | None = None,
    max_padding: float = MAX_PADDING,
) -> int:
    """End (exclusive) of the batch that starts at `start` in longest-first order.

    The first row is always taken, even when it alone exceeds the budget: a text never waits
    for a budget it cannot meet (the OOM policy handles it if the device cannot either). A row
    that would be more than `max_padding` padding ends the batch early: where lengths are
    sparse (small inputs, the tail of a corpus) one long text would otherwise pad many short
    ones to its length, which costs the CPU in proportion. In a large corpus neighbouring
    lengths are close and batches fill the budget.
    """
    total = len(sorted_lengths)
    if start >= total:
        return start
    longest = padded_length(int(sorted_lengths[start]), pad_multiple, limit)
    rows = max(1, token_budget // longest)
    if max_rows is not None:
        rows = min(rows, max_rows)
    end = min(total, start + rows)
    floor = longest * (1.0 - max_padding)
    # Lengths are descending: count the leading rows at least `floor` long.
    within = int(np.searchsorted(-sorted_lengths[start:end], -floor, side="right"))
    return start + max(1, within)


def plan_batches(
    lengths: Sequence[int] | np.ndarray,
    token_budget: int,
    max_rows: int | None = None,
    pad_multiple: int = 1,
    limit: int | None = None,
) -> list[Batch]:
    """The whole plan for a fixed budget (the engine re-plans as its budget adapts)."""
    return list(iter_batches(lengths, lambda: token_budget, max_rows, pad_multiple, limit))


def iter_batches(
    lengths: Sequence[int] | np.ndarray,
    budget: Callable[[], int],
    max_rows: int | None = None,
    pad_multiple: int = 1,
    limit: int | None = None,
) -> Iterator[Batch]:
    """Batches in longest-first order, asking `budget()` before each cut.

    The budget is read lazily so an adaptive controller can change it between batches.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = length_order(lengths)
    sorted_lengths = lengths[order]
    start = 0
    while start < len(order):
        end = take_batch(sorted_lengths, start, budget(), max_rows, pad_multiple, limit)
        yield Batch(
            indices=order[start:end],
            padded_length=padded_length(int(sorted_lengths[start]), pad_multiple, limit),
            tokens=int(sorted_lengths[start:end].sum()),
        )
        start = end
