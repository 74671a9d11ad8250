"""The adaptive token budget: grow while memory allows, halve on out-of-memory.

Pure arithmetic over numbers the engine measures (peak bytes per batch, the device's capacity),
so its decisions can be tested without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BudgetController:
    """Padded tokens allowed per batch, adjusted after every batch.

    Growth is by `growth` (x1.5) and only when the memory projected for the larger budget stays
    under `target_fraction` of the device's capacity; activation memory scales with padded
    tokens, so the projection is linear in the batch's measured activation bytes. An
    out-of-memory error halves the budget and sets a ceiling the budget never reaches again in
    this run, so the controller does not oscillate into the same failure. With `adaptive=False`
    (a fixed budget) it never grows, but still halves on out-of-memory: a budget that does not
    fit would otherwise fail on every following batch.
    """

    initial: int
    min_budget: int
    max_budget: int
    target_fraction: float = 0.85
    growth: float = 1.5
    adaptive: bool = True
    current: int = field(init=False)
    ceiling: int | None = field(init=False, default=None)
    best_safe: int | None = field(init=False, default=None)
    ooms: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 0 < self.min_budget <= self.max_budget:
            raise ValueError(
                f"need 0 < min_budget <= max_budget, got {self.min_budget}, {self.max_budget}"
            )
        self.current = self._clamp(self.initial)

    def _clamp(self, budget: float) -> int:
        budget = int(budget)
        if self.ceiling is not None:
            budget = min(budget, self.ceiling - 1)
        return max(self.min_budget, min(self.max_budget, budget))

    def on_success(
        self, padded_tokens: int, peak_bytes: int, base_bytes: int, capacity_bytes: int
    ) -> int:
        """Record a finished batch and return the budget for the next one.

        Only batches that used at least half the budget say something about it: the tail of an
        input is small and would make any budget look cheap.
        """
        if padded_tokens * 2 < self.current or capacity_bytes <= 0:
            return self.current
        per_token = max(peak_bytes - base_bytes, 0) / padded_tokens
        target_bytes = self.target_fraction * capacity_bytes
        if peak_bytes <= target_bytes:
            self.best_safe = max(self.best_safe or 0, self.current)
        if not self.adaptive:
            return self.current
        if peak_bytes > target_bytes and per_token > 0:
            self.current = self._clamp((target_bytes - base_bytes) / per_token)
        else:
            projected = base_bytes + per_token * self.current * self.growth
            if projected <= target_bytes:
                self.current = self._clamp(self.current * self.growth)
        return self.current

    def on_oom(self, padded_tokens: int) -> int:
        """Record an out-of-memory error for a batch of `padded_tokens`; halve the budget."""
        self.ooms += 1
        self.ceiling = min(self.ceiling or padded_tokens, padded_tokens)
        if self.best_safe is not None and self.best_safe >= self.ceiling:
            self.best_safe = None
        self.current = self._clamp(min(self.current, padded_tokens) // 2)
        return self.current
