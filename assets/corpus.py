"""Stage 1: a shard's records, validated and normalized; bad records go to quarantine."""

from dagster import AssetExecutionContext, MaterializeResult

from assets import stages
from assets.retries import TRANSIENT
from assets.shards import CPU_STAGE_NICENESS, for_each_shard, shard_asset
from resources.corpus.resource import CorpusResource


@shard_asset(
    retry_policy=TRANSIENT,
    kinds={"python", "parquet"},
)
def corpus_shard(context: AssetExecutionContext, corpus: CorpusResource) -> MaterializeResult:
    """The shard's valid documents; refused records are kept with their file, line and reason."""
    return for_each_shard(
        context,
        lambda key: stages.load(corpus, corpus.files(key), context.log),
        niceness=CPU_STAGE_NICENESS,
    )
