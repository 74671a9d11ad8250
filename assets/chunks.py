"""Stage 2: token windows of the embedding model's tokenizer, with their deterministic ids."""

from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult

from assets import stages
from assets.corpus import corpus_shard
from assets.shards import CPU_STAGE_NICENESS, for_each_shard, shard_asset
from resources import settings
from resources.capacity import Machine, chunk_processes
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource

# Worker processes a chunks step cuts its shards in (CHUNK_PROCESSES; 1 cuts them in the step's
# own process), by default the run's share of the cores (`resources/capacity.py`): on 16 CPUs,
# 4 processes cut a run's 8 shards 2.8x as fast as one when the run is alone, and 1.3x when 8
# runs chunk at once (BENCHMARKS.md, "The chunks step").
CHUNK_PROCESSES = settings.chunk_processes() or chunk_processes(Machine.this())


@shard_asset(
    deps=[corpus_shard],
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
    cut = stages.chunker(corpus, embedder, Path(corpus.data_dir))
    return for_each_shard(context, cut, niceness=CPU_STAGE_NICENESS, processes=CHUNK_PROCESSES)
