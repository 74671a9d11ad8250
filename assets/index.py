"""Stage 4: the shard's chunks in Weaviate, exactly once, with stale chunks removed."""

import warnings
from functools import partial

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MaterializeResult,
    PreviewWarning,
    asset_check,
)
from weaviate.collections import Collection

from assets import stages
from assets.embeddings import embeddings
from assets.partitions import shard_partitions
from assets.retries import TRANSIENT
from assets.shards import CPU_STAGE_NICENESS, Metadata, for_each_shard, shard_asset
from resources.corpus.resource import CorpusResource
from resources.corpus.tables import read_chunks
from resources.files import count_lines
from resources.weaviate import WeaviateResource
from resources.weaviate.ingest import consistent, count_shard


@shard_asset(
    deps=[embeddings],
    retry_policy=TRANSIENT,
    kinds={"weaviate"},
)
def weaviate_index(
    context: AssetExecutionContext, corpus: CorpusResource, weaviate: WeaviateResource
) -> MaterializeResult:
    """Batched ingest with deterministic ids; succeeds only when Weaviate's count is exact."""
    target = weaviate.target()
    context.log.info(f"Weaviate: {target.description}")
    where: Metadata = {
        "weaviate_mode": target.mode,
        "weaviate": target.description,
        "collection": weaviate.collection,
    }
    policy = weaviate.ingest_policy()

    def index(key: str) -> Metadata:
        files = corpus.files(key)
        indexed = stages.index(
            client, weaviate.collection, files, policy, weaviate.rejects, context.log
        )
        return {**where, **indexed}

    with stages.connected(lambda: weaviate.client(target)) as client:
        return for_each_shard(context, index, niceness=CPU_STAGE_NICENESS)


def _count_matches_chunks(
    context: AssetCheckExecutionContext, corpus: CorpusResource, weaviate: WeaviateResource
) -> AssetCheckResult:
    """Weaviate holds exactly one object per chunk of the shard: none missing, none stale.

    Objects set aside in the rejects file (with `weaviate.rejects="quarantine"`) are not
    expected in Weaviate; the check then warns instead of passing silently. Its calls retry as
    the index step's do, and a cluster that has lost its quorum fails it the same way.
    """
    policy = weaviate.ingest_policy()
    with stages.connected(weaviate.client) as client:
        calls = policy.calls(client)
        collection = consistent(client.collections.get(weaviate.collection), policy.consistency)
        counts = {
            key: calls(partial(_shard_counts, corpus, collection, key), f"counting {key}")
            for key in context.partition_keys
        }
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
    files = corpus.files(key)
    chunk_count = read_chunks(files.chunks, columns=["uuid"]).num_rows
    rejected = count_lines(files.weaviate_rejects)
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
