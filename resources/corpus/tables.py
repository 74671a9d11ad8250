"""Arrow tables that carry a shard from one stage to the next.

Each stage writes one Parquet file per shard under the data directory; the next stage reads it
back by partition key. Files are small (one shard) and written atomically, so they double as the
checkpoints a retried or resumed run relies on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from resources.corpus.chunking import Chunk
from resources.corpus.records import Document
from resources.files import atomic_path

DOCUMENTS_SCHEMA = pa.schema(
    [("id", pa.string()), ("text", pa.string()), ("metadata", pa.string())]
)
CHUNKS_SCHEMA = pa.schema(
    [
        ("uuid", pa.string()),
        ("doc_id", pa.string()),
        ("chunk_index", pa.int32()),
        ("text", pa.string()),
        ("token_count", pa.int32()),
        ("token_ids", pa.list_(pa.int32())),
        ("metadata", pa.string()),
    ]
)


def write_documents(path: Path, documents: Iterable[Document]) -> int:
    rows = [
        {"id": d.id, "text": d.text, "metadata": json.dumps(d.metadata, sort_keys=True)}
        for d in documents
    ]
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENTS_SCHEMA), tmp)
    return len(rows)


def read_documents(path: Path) -> Iterator[Document]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield Document(row["id"], row["text"], json.loads(row["metadata"]))


def write_chunks(path: Path, chunks: Iterable[tuple[Chunk, str]]) -> pa.Table:
    """Write (chunk, metadata JSON) pairs; returns the table for the caller's statistics."""
    rows = [
        {
            "uuid": chunk.uuid,
            "doc_id": chunk.doc_id,
            "chunk_index": chunk.chunk_index,
            "text": chunk.text,
            "token_count": chunk.token_count,
            "token_ids": chunk.token_ids,
            "metadata": metadata,
        }
        for chunk, metadata in chunks
    ]
    table = pa.Table.from_pylist(rows, schema=CHUNKS_SCHEMA)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return table


def read_chunks(path: Path, columns: list[str] | None = None) -> pa.Table:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the upstream partition first")
    return pq.read_table(path, columns=columns)


def token_arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The chunks' token ids as flat int32 ids and per-chunk lengths, without a Python list each.

    The embedding engine takes these as they are (`Tokenized`); a shard of 100k chunks would
    otherwise build 25M Python ints on the way.
    """
    token_ids = table.column("token_ids").combine_chunks()
    lengths = pc.list_value_length(token_ids).to_numpy(zero_copy_only=False).astype(np.int32)
    ids = token_ids.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return ids, lengths


def chunks_content_hash(
    table: pa.Table, arrays: tuple[np.ndarray, np.ndarray] | None = None
) -> str:
    """What the embeddings depend on: every chunk's id and token ids, in order.

    `arrays`: the table's `token_arrays`, when the caller has them already.
    """
    digest = hashlib.sha256()
    digest.update("\n".join(table.column("uuid").to_pylist()).encode())
    ids, lengths = arrays or token_arrays(table)
    digest.update(lengths.tobytes())
    digest.update(ids.astype("<i4").tobytes())
    return digest.hexdigest()
