"""Chunk rows plus vectors as Weaviate objects, with metadata typed to match the collection."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
from weaviate.classes.config import DataType

from resources.weaviate.ingest import IngestObject, PropertyValue
from resources.weaviate.schema import property_name

# The chunk columns an object is built from: the token ids stay behind in the chunks file.
OBJECT_COLUMNS = ("uuid", "doc_id", "chunk_index", "text", "token_count", "metadata")


def objects_version(chunks: pa.Table, vectors_hash: str, model: Mapping) -> str:
    """Changes whenever anything written to Weaviate would change: text, metadata, vectors."""
    digest = hashlib.sha256(vectors_hash.encode())
    digest.update(json.dumps(dict(model), sort_keys=True).encode())
    for column in OBJECT_COLUMNS:
        digest.update(json.dumps(chunks.column(column).to_pylist()).encode())
    return digest.hexdigest()[:20]


def metadata_samples(chunks: pa.Table) -> Iterator[dict]:
    """Each distinct metadata object of the shard, in corpus order: a key seen with two types
    gets the type of its first occurrence, the same in every run (a set's order is not)."""
    for raw in dict.fromkeys(chunks.column("metadata").to_pylist()):
        yield json.loads(raw)


def _coerce(value: PropertyValue, kind: DataType | None) -> PropertyValue:
    if kind == DataType.NUMBER and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def build_objects(
    chunks: pa.Table,
    vectors: np.ndarray,
    shard: str,
    version: str,
    property_types: Mapping[str, DataType],
) -> Iterator[IngestObject]:
    rows = zip(*(chunks.column(c).to_pylist() for c in OBJECT_COLUMNS), strict=True)
    for (uuid, doc_id, chunk_index, text, token_count, metadata), vector in zip(
        rows, vectors, strict=True
    ):
        properties: dict[str, PropertyValue] = {
            "doc_id": doc_id,
            "chunk_index": chunk_index,
            "text": text,
            "token_count": token_count,
            "shard": shard,
            "shard_version": version,
        }
        for key, value in json.loads(metadata).items():
            name = property_name(key)
            properties[name] = _coerce(value, property_types.get(name))
        yield IngestObject(uuid, properties, vector)
