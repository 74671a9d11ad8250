"""What the Dagster instance says is indexed: the content hash each shard was last indexed from.

`corpus_shard` records `source_content_hash` in its materialization; a shard counts as indexed
at that hash only when `weaviate_index` materialized after it (a run that read the shard and
then failed to ingest it leaves the shard not indexed).
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, RunsFilter
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from orchestration.changes import slices

SHARD_ASSET = AssetKey("corpus_shard")
INDEX_ASSET = AssetKey("weaviate_index")
_PAGE = 1000
_PARTITIONS_PER_QUERY = 500


def _latest(instance: DagsterInstance, asset: AssetKey, keys: list[str]) -> dict[str, tuple]:
    """partition -> (storage id, metadata) of its newest materialization."""
    latest: dict[str, tuple] = {}
    for part in slices(keys, _PARTITIONS_PER_QUERY):
        cursor = None
        while True:
            result = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=asset, asset_partitions=part),
                limit=_PAGE,
                cursor=cursor,
            )
            for record in result.records:
                partition = record.partition_key
                if partition is not None and partition not in latest:
                    latest[partition] = (record.storage_id, record.asset_materialization.metadata)
            if not result.has_more:
                break
            cursor = result.cursor
    return latest


def indexed_hashes(instance: DagsterInstance, keys: Iterable[str]) -> dict[str, str]:
    """shard -> content hash for every shard in `keys`; "" where it is not (fully) indexed."""
    wanted = list(keys)
    shards = _latest(instance, SHARD_ASSET, wanted)
    index = _latest(instance, INDEX_ASSET, wanted)
    hashes = {}
    for key in wanted:
        shard, indexed = shards.get(key), index.get(key)
        value = shard[1].get("source_content_hash") if shard else None
        complete = shard is not None and indexed is not None and indexed[0] > shard[0]
        hashes[key] = str(getattr(value, "value", "")) if complete and value else ""
    return hashes


def partitions_in_flight(instance: DagsterInstance, job_name: str) -> set[str]:
    """Shards that a queued or running run of the job is already indexing."""
    runs = instance.get_runs(
        filters=RunsFilter(job_name=job_name, statuses=list(IN_PROGRESS_RUN_STATUSES))
    )
    return {run.tags["dagster/partition"] for run in runs if "dagster/partition" in run.tags}
