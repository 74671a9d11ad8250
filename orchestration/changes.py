"""What changed in the corpus since it was last looked at: plain comparisons, no Dagster.

The corpus sensor keeps a cursor of each file's stamp (size and modification time), the stamp of
the shard manifest it last compared, and each shard's content hash. A tick whose file stamps all
match the cursor reads no byte of the corpus; changed stamps start a registration run, and the
manifest that run writes is compared here on a later tick.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# 64 bits of the sha256 tell versions of one shard apart and keep the cursor small at 100k shards.
HASH_CHARS = 16


def short_hash(content_hash: str) -> str:
    return content_hash[:HASH_CHARS]


@dataclass(frozen=True)
class CorpusCursor:
    """What the sensor last saw.

    `files`: the stamps a registration was last requested for (None: it has never looked).
    `manifest`: the stamp of the manifest last compared; `shards`: the hashes found in it (None:
    none compared yet, so what is indexed comes from the instance).
    """

    files: dict[str, str] | None = None
    manifest: str | None = None
    shards: dict[str, str] | None = None

    @classmethod
    def from_json(cls, raw: str | None) -> CorpusCursor:
        if not raw:
            return cls()
        body = json.loads(raw)
        return cls(files=body["files"], manifest=body.get("manifest"), shards=body.get("shards"))

    def to_json(self) -> str:
        body = {"files": self.files, "manifest": self.manifest, "shards": self.shards}
        return json.dumps(body, sort_keys=True)

    def fingerprint(self) -> str:
        """Tells cursors apart in run keys: a tick re-evaluated from the same cursor (the
        process died before the cursor was saved) repeats its keys and launches nothing twice,
        while a shard that later returns to an earlier content still gets a fresh key."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:8]


@dataclass(frozen=True)
class ShardChanges:
    added: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def to_index(self) -> list[str]:
        return sorted(self.added + self.changed)


def compare_shards(recorded: Mapping[str, str], current: Mapping[str, str]) -> ShardChanges:
    """Shards new since `recorded`, with another hash, or gone. Hashes compare by prefix, so a
    recorded short hash matches a full one; an empty recorded hash (never indexed) differs."""

    def same(old: str, new: str) -> bool:
        return bool(old) and short_hash(old) == short_hash(new)

    return ShardChanges(
        added=sorted(set(current) - set(recorded)),
        changed=sorted(k for k in current if k in recorded and not same(recorded[k], current[k])),
        removed=sorted(set(recorded) - set(current)),
    )


def run_key(shard: str, content_hash: str, context: str) -> str:
    """A run key per (shard, content, evaluation): see `CorpusCursor.fingerprint`."""
    return f"{shard}@{short_hash(content_hash)}/{context}"


def slices(keys: Iterable[str], size: int) -> list[list[str]]:
    """SQLite refuses very large statements (dagster #16260): partitions go in slices."""
    items = list(keys)
    return [items[start : start + size] for start in range(0, len(items), size)]
