"""Find the largest token budget that works, before a long run, in at most a few trials.

The search follows the estimate / grow x1.5 / bisect-after-first-failure scheme of the project's
reference on automatic batch-size search; each trial is a real forward pass at the worst-case
length, since memory per padded token is highest there (attention grows with length).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from resources.embedding.oom import is_oom, release_memory


@dataclass(frozen=True)
class Trial:
    budget: int
    ok: bool
    peak_bytes: int = 0


@dataclass
class ProbeResult:
    """The largest budget that passed (None if even the smallest failed) and every trial."""

    budget: int | None
    trials: list[Trial] = field(default_factory=list)


def search_budget(
    trial: Callable[[int], Trial],
    estimate: int,
    min_budget: int,
    max_budget: int,
    max_trials: int = 5,
    growth: float = 1.5,
) -> ProbeResult:
    """Grow from the estimate by `growth` until a failure, then bisect; stop after `max_trials`.

    Stops early once the bracket is within 5% (finer steps are noise in peak memory) or the
    next candidate was already tried.
    """
    lo: int | None = None
    hi: int | None = None
    result = ProbeResult(budget=None)
    budget = max(min_budget, min(max_budget, estimate))
    tried: set[int] = set()
    while len(result.trials) < max_trials and budget not in tried:
        tried.add(budget)
        outcome = trial(budget)
        result.trials.append(outcome)
        if outcome.ok:
            lo = budget
            nxt = min(max_budget, int(budget * growth)) if hi is None else (lo + hi) // 2
        else:
            hi = budget
            if lo is None:
                if budget <= min_budget:
                    break
                nxt = max(min_budget, budget // 2)
            else:
                nxt = (lo + hi) // 2
        if lo is not None and hi is not None and hi - lo <= max(1, lo // 20):
            break
        budget = nxt
    result.budget = lo
    return result


def forward_trial(
    run_forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device,
    length: int,
    vocab_size: int,
    capacity_bytes: int,
    target_fraction: float,
) -> Callable[[int], Trial]:
    """A trial that embeds `budget // length` random rows of `length` tokens on `device`.

    It passes when the pass completes and its peak stays under the target fraction; random ids
    (not zeros) so no kernel takes a shortcut a real batch would not.
    """
    generator = torch.Generator().manual_seed(0)

    def trial(budget: int) -> Trial:
        rows = max(1, budget // length)
        ok = True
        peak = 0
        try:
            ids = torch.randint(1000, vocab_size, (rows, length), generator=generator)
            mask = torch.ones_like(ids)
            torch.cuda.reset_peak_memory_stats(device)
            run_forward(ids.to(device), mask.to(device))
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_oom(exc):
                raise
            ok = False
        release_memory(device)
        return Trial(
            budget=budget, ok=ok and peak <= target_fraction * capacity_bytes, peak_bytes=peak
        )

    return trial
