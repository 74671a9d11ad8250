"""Stage 4: the shard's chunks in Weaviate, exactly once, with stale chunks removed."""

import warnings

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    PreviewWarning,
    asset,
    asset_check,
)
from weaviate import WeaviateClient
from weaviate.collections import Collection

from assets.embeddings import embeddings
from assets.shards import BACKFILL_POLICY, CPU_STAGE_NICENESS, Metadata, for_each_shard
from orchestration.partitions import shard_partitions
from orchestration.retries import TRANSIENT
from resources.corpus.resource import CorpusResource
from resources.corpus.tables import read_chunks
from resources.files import count_lines, write_lines
from resources.vectors import read_vectors
from resources.weaviate import WeaviateResource
from resources.weaviate.ingest import IngestError, count_shard, ingest_shard, shard_is_current
from resources.weaviate.objects import (
    OBJECT_COLUMNS,
    build_objects,
    metadata_samples,
    objects_version,
)
from resources.weaviate.schema import ensure_metadata_properties


@asset(
    deps=[embeddings],
    partitions_def=shard_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name="indexing",
    retry_policy=TRANSIENT,
    kinds={"weaviate"},
)
def weaviate_index(
    context: AssetExecutionContext, corpus: CorpusResource, weaviate: WeaviateResource
) -> MaterializeResult:
    """Batched ingest with deterministic ids; succeeds only when Weaviate's count is exact."""
    if weaviate.rejects not in ("fail", "quarantine"):
        raise Failure(
            f'weaviate.rejects must be "fail" or "quarantine", not {weaviate.rejects!r}',
            allow_retries=False,
        )
    target = weaviate.target()
    context.log.info(f"Weaviate: {target.description}")
    where: Metadata = {
        "weaviate_mode": target.mode,
        "weaviate": target.description,
        "collection": weaviate.collection,
    }
    with weaviate.client(target) as client:
        return for_each_shard(
            context,
            lambda key: {**where, **_index_shard(context, corpus, weaviate, client, key)},
            niceness=CPU_STAGE_NICENESS,
        )


def _index_shard(
    context: AssetExecutionContext,
    corpus: CorpusResource,
    weaviate: WeaviateResource,
    client: WeaviateClient,
    key: str,
) -> Metadata:
    table = read_chunks(corpus.stage_file("chunks", key), columns=list(OBJECT_COLUMNS))
    stored = read_vectors(corpus.stage_file("embeddings", key))
    if stored.uuids != table.column("uuid").to_pylist():
        raise Failure(
            f"shard {key}: the vector file does not match the current chunks; "
            f"materialize `embeddings` for this partition again",
            allow_retries=False,
        )
    version = objects_version(table, stored.content_hash, stored.model)
    rejects_file = corpus.stage_file("quarantine", key, ".weaviate.jsonl")
    collection = client.collections.get(weaviate.collection)
    expected = table.num_rows - count_lines(rejects_file)
    if shard_is_current(collection, key, version, expected):
        context.log.info(f"shard {key}: Weaviate already holds this version; nothing written")
        return {"objects": 0, "objects_in_weaviate": expected, "unchanged": True}
    types = ensure_metadata_properties(client, weaviate.collection, metadata_samples(table))
    objects = build_objects(table, stored.vectors, key, version, types)
    try:
        report = ingest_shard(
            client, weaviate.collection, key, version, objects, expected=table.num_rows,
            policy=weaviate.ingest_policy(), allow_rejects=weaviate.rejects == "quarantine",
        )  # fmt: skip
    except IngestError as exc:
        raise Failure(
            str(exc),
            allow_retries=exc.report.transient_only,
            metadata={"objects": exc.report.attempted, "failed_objects": len(exc.report.failed)},
        ) from None
    write_lines(rejects_file, [f.as_json() for f in report.failed])
    metadata: Metadata = {
        "objects": report.attempted,
        "failed_objects": len(report.failed),
        "stale_deleted": report.stale_deleted,
        "objects_in_weaviate": report.count_in_weaviate or 0,
        "ingest_batches": report.batches,
        "ingest_retries": report.retries,
        "ingest_seconds": round(report.seconds, 3),
        "ingest_objects_per_second": round(report.objects_per_second, 1),
        "unchanged": False,
    }
    if report.failed:
        metadata["rejects_file"] = MetadataValue.path(str(rejects_file))
    return metadata


def _count_matches_chunks(
    context: AssetCheckExecutionContext, corpus: CorpusResource, weaviate: WeaviateResource
) -> AssetCheckResult:
    """Weaviate holds exactly one object per chunk of the shard: none missing, none stale.

    Objects set aside in the rejects file (with `weaviate.rejects="quarantine"`) are not
    expected in Weaviate; the check then warns instead of passing silently.
    """
    with weaviate.client() as client:
        collection = client.collections.get(weaviate.collection)
        counts = {key: _shard_counts(corpus, collection, key) for key in context.partition_keys}
    expected = sum(e for e, _, _ in counts.values())
    actual = sum(a for _, a, _ in counts.values())
    rejected = sum(r for _, _, r in counts.values())
    metadata = {"expected_objects": expected, "objects_in_weaviate": actual, "rejected": rejected}
    wrong = [f"{key}: {a} for {e}" for key, (e, a, _) in counts.items() if a != e]
    if wrong:
        return AssetCheckResult(
            passed=False,
            metadata=metadata,
            description="objects in Weaviate for expected chunks: " + "; ".join(wrong[:10]),
        )
    if rejected:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata=metadata,
            description=f"{rejected} chunks were refused by Weaviate; see the rejects files",
        )
    return AssetCheckResult(passed=True, metadata=metadata)


def _shard_counts(corpus: CorpusResource, collection: Collection, key: str) -> tuple[int, int, int]:
    """(expected objects, objects in Weaviate, rejected chunks) of one shard."""
    chunk_count = read_chunks(corpus.stage_file("chunks", key), columns=["uuid"]).num_rows
    rejected = count_lines(corpus.stage_file("quarantine", key, ".weaviate.jsonl"))
    return chunk_count - rejected, count_shard(collection, key), rejected


# Partitioned asset checks are a preview feature of Dagster 1.13; it is what lets the check run
# for the partition that was just materialized, so its warning is expected here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PreviewWarning)
    object_count_matches_chunks = asset_check(
        asset=weaviate_index,
        name="object_count_matches_chunks",
        partitions_def=shard_partitions,
        blocking=True,
    )(_count_matches_chunks)
