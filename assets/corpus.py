"""Stage 1: a shard's records, validated and normalized; bad records go to quarantine."""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from assets.shards import BACKFILL_POLICY, CPU_STAGE_NICENESS, Metadata, for_each_shard
from orchestration.partitions import shard_partitions
from orchestration.retries import TRANSIENT
from resources.corpus.loading import BadRecordError, write_quarantine
from resources.corpus.resource import CorpusResource
from resources.corpus.tables import write_documents


@asset(
    partitions_def=shard_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name="indexing",
    retry_policy=TRANSIENT,
    kinds={"python", "parquet"},
)
def corpus_shard(context: AssetExecutionContext, corpus: CorpusResource) -> MaterializeResult:
    """The shard's valid documents; refused records are kept with their file, line and reason."""

    def load(key: str) -> Metadata:
        spec = corpus.shard(key)
        try:
            contents = corpus.load(key)
        except BadRecordError as exc:
            raise Failure(f"shard {key} (strict mode): {exc}", allow_retries=False) from None
        quarantine = corpus.stage_file("quarantine", key, ".jsonl")
        write_quarantine(quarantine, contents.rejects)
        for reject in contents.rejects[:5]:
            context.log.warning(f"rejected {reject.location}: {reject.reason}")
        metadata: Metadata = {
            "documents": write_documents(corpus.stage_file("shards", key), contents.documents),
            "rejected": len(contents.rejects),
            "source": MetadataValue.path(spec.source),
            "source_content_hash": spec.content_hash,
        }
        if contents.rejects:
            metadata["quarantine"] = MetadataValue.path(str(quarantine))
        return metadata

    return for_each_shard(context, load, niceness=CPU_STAGE_NICENESS)
