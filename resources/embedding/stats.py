"""What one embedding call did, flat enough for Dagster materialization metadata."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class EmbeddingStats:
    """Counters and timings of one call.

    `budgets` holds the budget each batch was cut with; `final_budget` is the one the next call
    starts from. `tokenize_seconds` is tokenizer time summed over workers (CPU work, possibly in
    parallel with the device); `tokenize_wait_seconds` is how long the device loop waited for
    it, the number that says whether tokenization is the bottleneck. `device_seconds` is the time
    of the model's batches on the device in use (CUDA events on a GPU, wall time on the CPU),
    copies and pooling included; `device_idle_seconds` is how long the GPU sat idle between one
    batch and the next, the number that says whether the launching host keeps up. Packed
    batches carry no padding: their `padded_tokens` are the tokens themselves.
    """

    device: str
    dtype: str
    packed: bool = False
    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0
    budgets: list[int] = field(default_factory=list)
    final_budget: int = 0
    ooms_recovered: int = 0
    cpu_fallback_indices: list[int] = field(default_factory=list)
    peak_device_memory_bytes: int = 0
    tokenize_seconds: float = 0.0
    tokenize_wait_seconds: float = 0.0
    device_seconds: float = 0.0
    device_idle_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def cpu_fallbacks(self) -> int:
        return len(self.cpu_fallback_indices)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def padding_fraction(self) -> float:
        if self.padded_tokens == 0:
            return 0.0
        return 1.0 - self.tokens / self.padded_tokens

    @staticmethod
    def combined(parts: list[tuple[int, EmbeddingStats]], wall_seconds: float) -> EmbeddingStats:
        """One call's statistics from the parts several devices ran in parallel.

        Each part comes with the index of its first text, so CPU fallbacks keep naming the
        caller's texts. Counts and device seconds add up; memory peaks and the final budget are
        per device, so the highest peak and the lowest final budget are what is kept.
        """
        first = parts[0][1]
        total = EmbeddingStats(
            device=",".join(part.device for _, part in parts),
            dtype=first.dtype,
            packed=first.packed,
            final_budget=min(part.final_budget for _, part in parts),
            peak_device_memory_bytes=max(part.peak_device_memory_bytes for _, part in parts),
            wall_seconds=wall_seconds,
        )
        for start, part in parts:
            total.texts += part.texts
            total.tokens += part.tokens
            total.padded_tokens += part.padded_tokens
            total.batches += part.batches
            total.budgets.extend(part.budgets)
            total.ooms_recovered += part.ooms_recovered
            total.cpu_fallback_indices.extend(start + i for i in part.cpu_fallback_indices)
            total.tokenize_seconds += part.tokenize_seconds
            total.tokenize_wait_seconds += part.tokenize_wait_seconds
            total.device_seconds += part.device_seconds
            total.device_idle_seconds += part.device_idle_seconds
        return total

    def as_metadata(self) -> dict[str, float | int | str]:
        """Named for any device (`device_seconds` is the CPU's on the CPU); the memory peak is
        measured on GPUs only, so it is left out elsewhere."""
        budgets = self.budgets or [0]
        metadata: dict[str, float | int | str] = {
            "texts": self.texts,
            "tokens": self.tokens,
            "padded_tokens": self.padded_tokens,
            "batches": self.batches,
            "budget_min": min(budgets),
            "budget_median": int(statistics.median(budgets)),
            "budget_max": max(budgets),
            "budget_final": self.final_budget,
            "ooms_recovered": self.ooms_recovered,
            "cpu_fallbacks": self.cpu_fallbacks,
            "peak_device_memory_bytes": self.peak_device_memory_bytes,
            "tokenize_seconds": round(self.tokenize_seconds, 4),
            "tokenize_wait_seconds": round(self.tokenize_wait_seconds, 4),
            "device_seconds": round(self.device_seconds, 4),
            "device_idle_seconds": round(self.device_idle_seconds, 4),
            "wall_seconds": round(self.wall_seconds, 4),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "texts_per_second": round(self.texts_per_second, 1),
            "padding_fraction": round(self.padding_fraction, 4),
            "device": self.device,
            "dtype": self.dtype,
            "packed": self.packed,
        }
        if not self.device.startswith("cuda"):
            del metadata["peak_device_memory_bytes"]
        return metadata
