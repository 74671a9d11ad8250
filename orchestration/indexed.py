"""What the Dagster instance says is indexed: the content hash each shard was last indexed from.

`corpus_shard` records `source_content_hash` in its materialization; a shard counts as indexed
at that hash only when `weaviate_index` materialized after it (a run that read the shard and
then failed to ingest it leaves the shard not indexed).
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, RunsFilter
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from orchestration.changes import slices
from orchestration.partitions import run_shards

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


def indexed_hashes(instance: DagsterInstance, current: Mapping[str, str]) -> dict[str, str]:
    """shard -> the content hash it is indexed at, "" where it is not (fully) indexed."""
    keys = list(current)
    shards = _latest(instance, SHARD_ASSET, keys)
    index = _latest(instance, INDEX_ASSET, keys)
    hashes = {}
    for key in keys:
        shard, indexed = shards.get(key), index.get(key)
        if shard is None or indexed is None or indexed[0] < shard[0]:
            hashes[key] = ""
            continue
        value = shard[1].get("source_content_hash")
        hashes[key] = str(getattr(value, "value", value or ""))
    return hashes


def partitions_in_flight(instance: DagsterInstance) -> set[str]:
    """Shards that a queued or running run is already working on: runs of `index_shards`, and
    the runs of a backfill launched from the UI (the implicit asset job, over a range of shards
    each)."""
    runs = instance.get_runs(filters=RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES)))
    return {key for run in runs for key in run_shards(instance, run.tags)}
