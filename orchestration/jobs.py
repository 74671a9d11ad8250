"""Jobs: register the corpus's shards as partitions, and index shards end to end."""

from dagster import (
    AssetSelection,
    Config,
    Failure,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)

from assets.partitions import shard_partitions
from resources.corpus.manifest import CorpusFileError, problems_path, register_corpus
from resources.corpus.resource import CorpusResource

# SQLite refuses very large statements (dagster #16260): register keys a slice at a time.
_REGISTER_SLICE = 1000


class RegisterConfig(Config):
    rescan: bool = False
    """Read every file, also those whose size and modification time did not change."""


@op
def register_corpus_shards(
    context: OpExecutionContext, corpus: CorpusResource, config: RegisterConfig
) -> list[str]:
    """Scan the corpus's changed files, save the manifest and id registry, add new partitions."""
    try:
        scan = register_corpus(
            corpus.corpus_path, corpus.shard_size, corpus.data_dir, corpus.strict, config.rescan
        )
    except CorpusFileError as exc:
        raise Failure(f"strict mode: {exc}", allow_retries=False) from None
    except FileNotFoundError as exc:
        raise Failure(
            f"{exc}: set CORPUS_PATH (or the corpus resource's corpus_path) to the folder of "
            "your JSONL or Parquet files",
            allow_retries=False,
        ) from exc
    if not scan.shards:
        raise Failure(
            f"no records in .jsonl or .parquet files under {corpus.corpus_path!r}"
            + (f"; see {problems_path(corpus.data_dir)}" if scan.problems else ""),
            allow_retries=False,
        )
    for problem in scan.problems:
        context.log.error(f"{problem.location}: {problem.reason}")
    keys = [spec.key for spec in scan.shards]
    instance = context.instance
    known = set(instance.get_dynamic_partitions(shard_partitions.name))
    new = [key for key in keys if key not in known]
    for start in range(0, len(new), _REGISTER_SLICE):
        instance.add_dynamic_partitions(shard_partitions.name, new[start : start + _REGISTER_SLICE])
    context.log.info(
        f"{len(keys)} shards ({scan.records} records in {scan.files} files, "
        f"{scan.files - scan.reused_files} read, the others unchanged) under "
        f"{corpus.corpus_path}, partitions {keys[0]} .. {keys[-1]}; {len(new)} new"
        f"{f' ({new[0]} .. {new[-1]})' if new else ''}; {scan.duplicate_ids} repeated ids"
    )
    context.add_output_metadata(
        {
            "files": scan.files,
            "files_read": scan.files - scan.reused_files,
            "shards": len(keys),
            "new_shards": len(new),
            "records": scan.records,
            "repeated_ids": scan.duplicate_ids,
            "problem_files": len(scan.problems),
        }
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


profile_embeddings = define_asset_job(
    "profile_embeddings",
    selection=AssetSelection.assets("embedding_profile"),
    description="Sweep token budgets on this GPU; write the HTML report; store the best budget.",
)
