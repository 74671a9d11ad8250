"""Append-only operation log, one per collection.

A batch appends one record, so persisting costs what the batch weighs and never a snapshot of
the whole collection: this is what lets the sandbox hold a million 384-dimensional objects on
disk. On start the log is replayed; a torn record at the end (the process died mid-write) is
cut off, and a log carrying overwritten or deleted objects is compacted into a fresh one.

Record layout: kind (1 byte, b"P" put or b"D" delete), JSON length and blob length (two
little-endian uint32), the JSON, then the blob. A put's JSON lists
`[uuid, properties, created_ms, updated_ms, [[vector_name, dim], ...]]` per object and its blob
holds those vectors as little-endian float32, object after object. A delete's JSON lists uuids.
Records are flushed to the OS after each write (safe against a killed process, not against
power loss).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_HEADER = struct.Struct("<cII")


@dataclass
class LoggedObject:
    uuid: str
    properties: dict[str, Any]
    created_ms: int
    updated_ms: int
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


def encode_put(objects: Iterable[LoggedObject]) -> bytes:
    meta: list[list[Any]] = []
    blobs: list[bytes] = []
    for obj in objects:
        dims = []
        for name, vec in obj.vectors.items():
            dims.append([name, int(vec.shape[0])])
            blobs.append(np.ascontiguousarray(vec, dtype="<f4").tobytes())
        meta.append([obj.uuid, obj.properties, obj.created_ms, obj.updated_ms, dims])
    payload = json.dumps(meta, separators=(",", ":")).encode()
    blob = b"".join(blobs)
    return _HEADER.pack(b"P", len(payload), len(blob)) + payload + blob


def encode_delete(uuids: Iterable[str]) -> bytes:
    payload = json.dumps(list(uuids)).encode()
    return _HEADER.pack(b"D", len(payload), 0) + payload


def _decode_put(payload: bytes, blob: bytes) -> list[LoggedObject]:
    floats = np.frombuffer(blob, dtype="<f4")
    pos = 0
    out = []
    for uuid, props, created, updated, dims in json.loads(payload):
        vectors = {}
        for name, dim in dims:
            vectors[name] = floats[pos : pos + dim]
            pos += dim
        out.append(LoggedObject(uuid, props, created, updated, vectors))
    return out


def replay(path: Path) -> Iterator[tuple[str, Any]]:
    """Yields ("P", [LoggedObject]) and ("D", [uuid]) in write order; cuts a torn tail."""
    if not path.exists():
        return
    good = 0
    with path.open("rb") as f:
        while True:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                break
            kind, json_len, blob_len = _HEADER.unpack(header)
            payload = f.read(json_len)
            blob = f.read(blob_len)
            if len(payload) < json_len or len(blob) < blob_len or kind not in (b"P", b"D"):
                break
            good = f.tell()
            if kind == b"P":
                yield "P", _decode_put(payload, blob)
            else:
                yield "D", json.loads(payload)
    if path.stat().st_size != good:
        with path.open("r+b") as f:
            f.truncate(good)


class OpLog:
    """Appends records to one collection's log file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("ab")

    def append(self, record: bytes) -> None:
        self._file.write(record)
        self._file.flush()

    def rewrite(self, objects: Iterable[LoggedObject], chunk: int = 10_000) -> None:
        """Replaces the log with one holding only live objects (compaction)."""
        tmp = self.path.with_suffix(".compact")
        with tmp.open("wb") as f:
            batch: list[LoggedObject] = []
            for obj in objects:
                batch.append(obj)
                if len(batch) >= chunk:
                    f.write(encode_put(batch))
                    batch = []
            if batch:
                f.write(encode_put(batch))
            f.flush()
            os.fsync(f.fileno())
        self._file.close()
        os.replace(tmp, self.path)
        self._file = self.path.open("ab")

    def close(self) -> None:
        self._file.close()
