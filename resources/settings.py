"""Where the project keeps its files and finds its corpus, read from the environment in one place.

Resources take these as their fields' defaults (not as values set in code), so a run config
that sets one field of a resource in the launchpad, `strict: true` say, keeps the others:
Dagster replaces every value set in code by the run config's, and falls back to the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> str:
    """Stage files, manifest, quarantine, learned budgets: INDEXER_DATA_DIR, else `.data` in the
    project."""
    return os.environ.get("INDEXER_DATA_DIR") or str(PROJECT_ROOT / ".data")


def corpus_path() -> str:
    """The corpus: CORPUS_PATH, else `corpus` in the data folder."""
    return os.environ.get("CORPUS_PATH") or str(Path(data_dir()) / "corpus")


def shard_size() -> int:
    """Documents per shard: SHARD_SIZE, else 1,000."""
    return int(os.environ.get("SHARD_SIZE") or 1000)
