"""Stage 4: the shard's chunks in Weaviate, exactly once, with stale chunks removed."""

import warnings

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    PreviewWarning,
    asset,
    asset_check,
)

from assets.embeddings import embeddings
from orchestration.partitions import shard_partitions
from resources.corpus.resource import CorpusResource
from resources.corpus.tables import read_chunks
from resources.vectors import read_vectors
from resources.weaviate import WeaviateResource
from resources.weaviate.ingest import IngestError, count_shard, ingest_shard
from resources.weaviate.objects import build_objects, metadata_samples
from resources.weaviate.schema import ensure_metadata_properties


@asset(
    deps=[embeddings],
    partitions_def=shard_partitions,
    group_name="indexing",
    kinds={"weaviate"},
)
def weaviate_index(
    context: AssetExecutionContext, corpus: CorpusResource, weaviate: WeaviateResource
) -> MaterializeResult:
    """Batched ingest with deterministic ids; succeeds only when Weaviate's count is exact."""
    key = context.partition_key
    table = read_chunks(corpus.stage_file("chunks", key))
    stored = read_vectors(corpus.stage_file("embeddings", key))
    if stored.uuids != table.column("uuid").to_pylist():
        raise Failure(
            f"shard {key}: the vector file does not match the current chunks; "
            f"materialize `embeddings` for this partition again"
        )
    target = weaviate.target()
    context.log.info(f"Weaviate: {target.description}")
    version = stored.content_hash[:16]
    with weaviate.client(target) as client:
        types = ensure_metadata_properties(client, weaviate.collection, metadata_samples(table))
        objects = build_objects(table, stored.vectors, key, version, types)
        try:
            report = ingest_shard(
                client, weaviate.collection, key, version, objects, expected=table.num_rows,
                batch_size=weaviate.batch_size, concurrent_requests=weaviate.concurrent_requests,
            )  # fmt: skip
        except IngestError as exc:
            raise Failure(
                str(exc),
                metadata={
                    "weaviate_mode": target.mode,
                    "objects": exc.report.attempted,
                    "failed_objects": len(exc.report.failed),
                },
            ) from None
    return MaterializeResult(
        metadata={
            "weaviate_mode": target.mode,
            "weaviate": target.description,
            "collection": weaviate.collection,
            "objects": report.attempted,
            "failed_objects": len(report.failed),
            "stale_deleted": report.stale_deleted,
            "objects_in_weaviate": report.count_in_weaviate or 0,
            "ingest_seconds": round(report.seconds, 3),
            "ingest_objects_per_second": round(report.objects_per_second, 1),
        }
    )


def _count_matches_chunks(
    context: AssetCheckExecutionContext, corpus: CorpusResource, weaviate: WeaviateResource
) -> AssetCheckResult:
    """Weaviate holds exactly one object per chunk of the shard: none missing, none stale."""
    key = context.partition_key
    expected = read_chunks(corpus.stage_file("chunks", key), columns=["uuid"]).num_rows
    with weaviate.client() as client:
        actual = count_shard(client.collections.get(weaviate.collection), key)
    return AssetCheckResult(
        passed=actual == expected,
        metadata={"expected_objects": expected, "objects_in_weaviate": actual},
        description=None if actual == expected else f"{actual} objects for {expected} chunks",
    )


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
