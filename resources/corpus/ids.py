"""Which shard owns each document id, so an id repeated across shards is caught.

Chunk ids derive from document ids, so two shards holding the same document id would overwrite
each other's objects in Weaviate, and which copy survives would depend on run order. The
registry is built when shards are registered, in corpus order (sorted files, then line or row),
so the first occurrence owns the id whatever order partitions run in; every later occurrence is
quarantined by its shard with the owner's location. It lives on disk (SQLite), so memory does
not grow with the corpus.

Besides the owners it keeps every occurrence, file by file, in order: a registration that finds a
file unchanged copies that file's occurrences from the previous registry instead of reading the
file again, and ownership still comes out as a full scan would make it (an id whose first copy
went away passes to its next occurrence, which only the full list knows).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

_BATCH = 10_000
_LOOKUP = 500  # stays under SQLite's limit on bound parameters


def registry_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "manifest" / "ids.sqlite"


def _read_only(path: Path) -> str:
    return f"{Path(path).resolve().as_uri()}?mode=ro"


def has_occurrences(path: Path) -> bool:
    """Whether a registry keeps every occurrence (registries written before it did, do not)."""
    if not path.is_file():
        return False
    with closing(sqlite3.connect(_read_only(path), uri=True)) as db:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seen'"
        return db.execute(query).fetchone() is not None


class IdRegistryWriter:
    """Collects (id, shard, location) in corpus order; `commit` swaps it in atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._tmp.unlink(missing_ok=True)
        self._db = sqlite3.connect(self._tmp, uri=True)
        self._db.execute("PRAGMA journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE ids (doc_id TEXT PRIMARY KEY, shard TEXT NOT NULL, "
            "location TEXT NOT NULL) WITHOUT ROWID"
        )
        # Clustered by file, so one file's occurrences are one range to copy.
        self._db.execute(
            "CREATE TABLE seen (source TEXT NOT NULL, seq INTEGER NOT NULL, doc_id TEXT NOT NULL, "
            "shard TEXT NOT NULL, location TEXT NOT NULL, PRIMARY KEY (source, seq)) WITHOUT ROWID"
        )
        self._pending: list[tuple[str, int, str, str, str]] = []
        self._source = ""
        self._seq = 0
        self.duplicates = 0

    def add(self, doc_id: str, shard: str, location: str) -> None:
        self._pending.append((self._source, self._seq, doc_id, shard, location))
        self._seq += 1
        if len(self._pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO seen VALUES (?, ?, ?, ?, ?)", self._pending)
        before = self._db.total_changes
        self._db.executemany(
            "INSERT OR IGNORE INTO ids VALUES (?, ?, ?)", [row[2:] for row in self._pending]
        )
        self.duplicates += len(self._pending) - (self._db.total_changes - before)
        self._pending.clear()

    def begin_file(self, source: str) -> None:
        """Ids of a file that turns out unreadable half-way must not stay registered."""
        self._flush()
        self._source, self._seq = source, 0
        self._db.execute("SAVEPOINT file")

    def copy_file(self, source: str, registry: Path) -> None:
        """The file's occurrences as another registry (`has_occurrences`) holds them, in order:
        the previous registration's, or one a worker process wrote for this file alone."""
        self._flush()
        self._db.commit()  # SQLite attaches only outside a transaction
        self._db.execute("ATTACH DATABASE ? AS other", (_read_only(registry),))
        before = self._db.total_changes
        self._db.execute(
            "INSERT INTO seen SELECT * FROM other.seen WHERE source = ? ORDER BY seq", (source,)
        )
        copied = self._db.total_changes - before
        self._db.execute(
            "INSERT OR IGNORE INTO ids SELECT doc_id, shard, location FROM other.seen "
            "WHERE source = ? ORDER BY seq",
            (source,),
        )
        self.duplicates += copied - (self._db.total_changes - before - copied)
        self._db.commit()
        self._db.execute("DETACH DATABASE other")

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
    with sqlite3.connect(_read_only(path), uri=True) as db:
        for start in range(0, len(ids), _LOOKUP):
            chunk = ids[start : start + _LOOKUP]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT doc_id, shard, location FROM ids WHERE doc_id IN ({marks})"
            for doc_id, shard, location in db.execute(query, chunk):
                found[doc_id] = (shard, location)
    return found
