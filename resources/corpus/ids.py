"""Which shard owns each document id, so an id repeated across shards is caught.

Chunk ids derive from document ids, so two shards holding the same document id would overwrite
each other's objects in Weaviate, and which copy survives would depend on run order. The
registry is built when shards are registered, in corpus order (sorted files, then line or row),
so the first occurrence owns the id whatever order partitions run in; every later occurrence is
quarantined by its shard with the owner's location. It lives on disk (SQLite), so memory does
not grow with the corpus.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

_BATCH = 10_000
_LOOKUP = 500  # stays under SQLite's limit on bound parameters


def registry_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "manifest" / "ids.sqlite"


class IdRegistryWriter:
    """Collects (id, shard, location) in corpus order; `commit` swaps it in atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._tmp.unlink(missing_ok=True)
        self._db = sqlite3.connect(self._tmp)
        self._db.execute("PRAGMA journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE ids (doc_id TEXT PRIMARY KEY, shard TEXT NOT NULL, "
            "location TEXT NOT NULL) WITHOUT ROWID"
        )
        self._pending: list[tuple[str, str, str]] = []
        self.duplicates = 0

    def add(self, doc_id: str, shard: str, location: str) -> None:
        self._pending.append((doc_id, shard, location))
        if len(self._pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        before = self._db.total_changes
        self._db.executemany("INSERT OR IGNORE INTO ids VALUES (?, ?, ?)", self._pending)
        self.duplicates += len(self._pending) - (self._db.total_changes - before)
        self._pending.clear()

    def begin_file(self) -> None:
        """Ids of a file that turns out unreadable half-way must not stay registered."""
        self._flush()
        self._db.execute("SAVEPOINT file")

    def end_file(self, keep: bool) -> None:
        self._flush()
        if not keep:
            self._db.execute("ROLLBACK TO file")
        self._db.execute("RELEASE file")

    def commit(self) -> None:
        self._flush()
        self._db.commit()
        self._db.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._db.close()
        self._tmp.unlink(missing_ok=True)


def owners(data_dir: str | Path, doc_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(owning shard, location of the first occurrence) for each id the registry knows."""
    path = registry_path(data_dir)
    if not path.is_file():
        return {}
    found: dict[str, tuple[str, str]] = {}
    ids = list(doc_ids)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        for start in range(0, len(ids), _LOOKUP):
            chunk = ids[start : start + _LOOKUP]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT doc_id, shard, location FROM ids WHERE doc_id IN ({marks})"
            for doc_id, shard, location in db.execute(query, chunk):
                found[doc_id] = (shard, location)
    return found
