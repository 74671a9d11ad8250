"""Budgets learned on one machine, kept for the next run on the same model, GPU and settings.

One small JSON file per key, written atomically (temporary file in the same directory, then
`os.replace`), so concurrent step processes never read a half-written file and the last writer
wins without a lock.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class BudgetKey:
    """What a budget depends on: the model's weights, the GPU, the precision and the length."""

    model: str
    gpu: str
    dtype: str
    max_length: int

    def filename(self) -> str:
        raw = f"{self.model}__{self.gpu}__{self.dtype}__{self.max_length}"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("_") + ".json"


@dataclass(frozen=True)
class LearnedBudget:
    token_budget: int
    source: str
    updated_at: float


class LearnedBudgets:
    """The directory `<data_dir>/budgets/` of learned token budgets."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, key: BudgetKey) -> Path:
        return self.directory / key.filename()

    def load(self, key: BudgetKey) -> LearnedBudget | None:
        """The stored budget, or None when there is none or the file does not match the key."""
        try:
            data = json.loads(self.path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if data.get("key") != asdict(key):
            return None
        return LearnedBudget(
            token_budget=int(data["token_budget"]),
            source=str(data["source"]),
            updated_at=float(data["updated_at"]),
        )

    def save(self, key: BudgetKey, token_budget: int, source: str) -> LearnedBudget:
        learned = LearnedBudget(
            token_budget=int(token_budget), source=source, updated_at=time.time()
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = {"key": asdict(key), **asdict(learned)}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return learned
