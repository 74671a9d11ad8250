"""Reading one shard into valid documents plus a record of every record that was refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from resources.corpus.reader import ShardSpec, read_shard
from resources.corpus.records import Document, Reject, validate
from resources.files import write_lines


class BadRecordError(ValueError):
    """Raised in strict mode: the message names the file and line or row."""


@dataclass
class ShardContents:
    documents: list[Document] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def load_shard(spec: ShardSpec, strict: bool = False) -> ShardContents:
    """Validate every record of the shard; a repeated id is refused after its first occurrence."""
    contents = ShardContents()
    first_seen: dict[str, str] = {}
    for raw in read_shard(spec):
        result = validate(raw)
        if isinstance(result, Document) and result.id in first_seen:
            result = Reject(
                raw.location,
                f"duplicate id {result.id!r} (first at {first_seen[result.id]})",
                raw.raw[:500],
            )
        if isinstance(result, Reject):
            if strict:
                raise BadRecordError(f"{result.location}: {result.reason}")
            contents.rejects.append(result)
            continue
        first_seen[result.id] = raw.location
        contents.documents.append(result)
    return contents


def write_quarantine(path: Path, rejects: list[Reject]) -> None:
    """One JSON line per refused record; an earlier run's file is removed when none remain."""
    write_lines(path, [r.as_json() for r in rejects])
