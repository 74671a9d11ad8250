"""One shard's chunking stage: its documents file in, its chunks file and quarantine out.

Kept apart from the Dagster asset and free of Dagster, torch and transformers, so that a run's
shards can be cut in worker processes that start in under a second: chunking is pure Python
(see wordpiece.py): one core cuts 0.8 to 0.9 M tokens/s, while one GPU embeds 7 M (BENCHMARKS.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from resources.corpus.chunking import Chunker, ChunkingConfig
from resources.corpus.loading import write_quarantine
from resources.corpus.records import Document, Reject
from resources.corpus.tables import read_documents, write_chunks
from resources.shard_files import ShardFiles
from resources.tokenizer.model_source import load_tokenizer


@lru_cache(maxsize=4)
def _chunker(model: str, config: ChunkingConfig) -> Chunker:
    """One chunker per process and model: its WordPiece cache carries over from shard to shard."""
    return Chunker(load_tokenizer(model), config)


@dataclass(frozen=True)
class ShardChunker:
    """Cuts a shard by partition key; small and picklable, so a process pool can run it."""

    root: str  # where the shard's files are (`ShardFiles`)
    model: str
    config: ChunkingConfig

    def __call__(self, key: str) -> dict[str, int]:
        chunker = _chunker(self.model, self.config)
        files = ShardFiles(Path(self.root), key)
        documents = list(read_documents(files.documents))
        metadata_json = {d.id: json.dumps(d.metadata, sort_keys=True) for d in documents}
        empty: list[Reject] = []

        def refuse(document: Document) -> None:
            empty.append(Reject(f"document {document.id!r}", "text has no tokens for the model"))

        table = write_chunks(
            files.chunks,
            ((c, metadata_json[c.doc_id]) for c in chunker.chunk(documents, on_empty=refuse)),
        )
        write_quarantine(files.chunking_quarantine, empty)
        tokens = table.column("token_count").to_pylist()
        return {
            "documents": len(documents),
            "chunks": table.num_rows,
            "tokens": sum(tokens),
            "max_chunk_tokens": max(tokens, default=0),
            "documents_without_tokens": len(empty),
            "chunk_tokens": self.config.max_tokens,
            "chunk_overlap": self.config.overlap,
        }
