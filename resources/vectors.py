"""Per-shard vector files: the checkpoint that lets a retry skip finished GPU work.

Each file records what its vectors were computed from: the content hash of the shard's chunks
and the model's identity (name, weights hash, dtype, maximum length). A later run reuses the file
only when both match; anything else is recomputed. It also keeps the numbers of the run that
computed them (throughput, budgets, memory), which a run that reuses the file reports again.
Writes are atomic (see `resources.files`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from resources.files import atomic_path

_META_KEY = b"indexer.vectors"


@dataclass(frozen=True)
class VectorFile:
    uuids: list[str]
    vectors: np.ndarray
    content_hash: str
    model: dict


def write_vectors(
    path: Path,
    uuids: list[str],
    vectors: np.ndarray,
    content_hash: str,
    model: Mapping,
    stats: Mapping | None = None,
) -> None:
    if len(uuids) != len(vectors):
        raise ValueError(f"{len(uuids)} ids for {len(vectors)} vectors")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
    table = pa.table({"uuid": pa.array(uuids, pa.string()), "vector": column})
    meta = {"content_hash": content_hash, "model": dict(model), "stats": dict(stats or {})}
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_header(path: Path) -> dict | None:
    """The stored (content hash, model) of a vector file; None if absent or unreadable."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return None
    raw = meta.get(_META_KEY)
    return json.loads(raw) if raw else None


def current_header(path: Path, content_hash: str, model: Mapping) -> dict | None:
    """The file's header when its vectors were made from these chunks with this model."""
    header = read_header(path) or {}
    stored = {"content_hash": header.get("content_hash"), "model": header.get("model")}
    wanted = {"content_hash": content_hash, "model": json.loads(json.dumps(dict(model)))}
    return header if stored == wanted else None


def read_vectors(path: Path) -> VectorFile:
    table = pq.read_table(path)
    header = read_header(path) or {}
    column = table.column("vector").combine_chunks()
    dim = column.type.list_size
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return VectorFile(
        table.column("uuid").to_pylist(),
        flat.reshape(len(table), dim),
        header.get("content_hash", ""),
        header.get("model", {}),
    )
