"""Stage 2: token windows of the embedding model's tokenizer, with their deterministic ids."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.corpus import corpus_shard
from assets.shards import (
    BACKFILL_POLICY,
    CHUNK_PROCESSES,
    CPU_STAGE_NICENESS,
    for_each_shard,
)
from orchestration.partitions import shard_partitions
from resources.corpus.resource import CorpusResource
from resources.corpus.shard_chunking import ShardChunker
from resources.embedding import EmbeddingResource


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
    """Each document cut into overlapping windows that fit the model exactly.

    A run's shards are cut in `CHUNK_PROCESSES` worker processes at once: cutting is pure Python,
    and a run that cut its shards one after another left the machine's other cores idle while
    every run of a backfill wave was chunking.
    """
    cut = ShardChunker(corpus.data_dir, embedder.model, corpus.chunking(embedder.max_length))
    return for_each_shard(context, cut, niceness=CPU_STAGE_NICENESS, processes=CHUNK_PROCESSES)
