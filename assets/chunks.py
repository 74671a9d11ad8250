"""Stage 2: token windows of the embedding model's tokenizer, with their deterministic ids."""

import json

from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.corpus import corpus_shard
from assets.shards import BACKFILL_POLICY, CPU_STAGE_NICENESS, Metadata, for_each_shard
from orchestration.partitions import shard_partitions
from resources.corpus.chunking import Chunker
from resources.corpus.loading import write_quarantine
from resources.corpus.records import Document, Reject
from resources.corpus.resource import CorpusResource
from resources.corpus.tables import read_documents, write_chunks
from resources.embedding import EmbeddingResource
from resources.embedding.model_source import load_tokenizer


@asset(
    deps=[corpus_shard],
    partitions_def=shard_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name="indexing",
    kinds={"python", "parquet"},
)
def chunks(
    context: AssetExecutionContext, corpus: CorpusResource, embedder: EmbeddingResource
) -> MaterializeResult:
    """Each document cut into overlapping windows that fit the model exactly."""
    chunker = Chunker(load_tokenizer(embedder.model), corpus.chunking(embedder.max_length))

    def cut(key: str) -> Metadata:
        documents = list(read_documents(corpus.stage_file("shards", key)))
        metadata_json = {d.id: json.dumps(d.metadata, sort_keys=True) for d in documents}
        empty: list[Reject] = []

        def refuse(document: Document) -> None:
            empty.append(Reject(f"document {document.id!r}", "text has no tokens for the model"))

        table = write_chunks(
            corpus.stage_file("chunks", key),
            ((c, metadata_json[c.doc_id]) for c in chunker.chunk(documents, on_empty=refuse)),
        )
        write_quarantine(corpus.stage_file("quarantine", key, ".chunking.jsonl"), empty)
        tokens = table.column("token_count").to_pylist()
        return {
            "documents": len(documents),
            "chunks": table.num_rows,
            "tokens": sum(tokens),
            "max_chunk_tokens": max(tokens, default=0),
            "documents_without_tokens": len(empty),
            "chunk_tokens": chunker.config.max_tokens,
            "chunk_overlap": chunker.config.overlap,
        }

    return for_each_shard(context, cut, niceness=CPU_STAGE_NICENESS)
