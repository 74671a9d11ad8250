"""Jobs: register the corpus's shards as partitions, and index shards end to end."""

from dagster import AssetSelection, OpExecutionContext, define_asset_job, job, op

from orchestration.partitions import shard_partitions
from resources.corpus.manifest import write_manifest
from resources.corpus.reader import scan_shards
from resources.corpus.resource import CorpusResource

# SQLite refuses very large statements (dagster #16260): register keys a slice at a time.
_REGISTER_SLICE = 1000


@op
def register_corpus_shards(context: OpExecutionContext, corpus: CorpusResource) -> list[str]:
    """Scan the corpus once, save the shard manifest and add any new shard partitions."""
    shards = list(scan_shards(corpus.corpus_path, corpus.shard_size))
    if not shards:
        raise ValueError(f"no .jsonl or .parquet files under {corpus.corpus_path!r}")
    path = write_manifest(corpus.data_dir, corpus.corpus_path, corpus.shard_size, shards)
    keys = [spec.key for spec in shards]
    instance = context.instance
    known = set(instance.get_dynamic_partitions(shard_partitions.name))
    new = [key for key in keys if key not in known]
    for start in range(0, len(new), _REGISTER_SLICE):
        instance.add_dynamic_partitions(shard_partitions.name, new[start : start + _REGISTER_SLICE])
    records = sum(spec.records for spec in shards)
    context.log.info(
        f"{len(keys)} shards ({records} records) in {corpus.corpus_path}; {len(new)} new; "
        f"manifest {path}"
    )
    return keys


@job(description="Scan the corpus and register one partition per shard.")
def register_shards() -> None:
    register_corpus_shards()


index_shards = define_asset_job(
    "index_shards",
    selection=AssetSelection.groups("indexing"),
    description="Chunk, embed and ingest the selected shards.",
)
