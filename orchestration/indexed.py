"""What the Dagster instance says is indexed: the content hash each shard was last indexed from.

`corpus_shard` records `source_content_hash` in its materialization; a shard counts as indexed
at that hash only when `weaviate_index` materialized after it (a run that read the shard and
then failed to ingest it leaves the shard not indexed).
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance, RunsFilter
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from assets.partitions import run_shards
from orchestration.changes import slices

SHARD_ASSET = AssetKey("corpus_shard")
INDEX_ASSET = AssetKey("weaviate_index")
_PARTITIONS_PER_QUERY = 500


def _latest(instance: DagsterInstance, asset: AssetKey, keys: list[str]) -> dict[str, int]:
    """partition -> storage id of its newest materialization.

    One grouped query per slice of partitions, whatever the history: a shard re-indexed every
    night for a year has hundreds of materializations, and reading them all would make each
    tick slower than the last.
    """
    latest: dict[str, int] = {}
    for part in slices(keys, _PARTITIONS_PER_QUERY):
        latest.update(
            instance.get_latest_storage_id_by_partition(
                asset, DagsterEventType.ASSET_MATERIALIZATION, set(part)
            )
        )
    return latest


def _content_hashes(instance: DagsterInstance, storage_ids: list[int]) -> dict[int, str]:
    """storage id -> the `source_content_hash` its `corpus_shard` materialization recorded."""
    hashes: dict[int, str] = {}
    for part in slices(storage_ids, _PARTITIONS_PER_QUERY):
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=SHARD_ASSET, storage_ids=part), limit=len(part)
        ).records
        for record in records:
            value = record.asset_materialization.metadata.get("source_content_hash")
            hashes[record.storage_id] = str(getattr(value, "value", value or ""))
    return hashes


def indexed_hashes(instance: DagsterInstance, current: Mapping[str, str]) -> dict[str, str]:
    """shard -> the content hash it is indexed at, "" where it is not (fully) indexed."""
    keys = list(current)
    shards = _latest(instance, SHARD_ASSET, keys)
    index = _latest(instance, INDEX_ASSET, keys)
    # Indexed: weaviate_index materialized after the shard's input was last read.
    indexed = {
        key: shards[key] for key in keys if key in shards and index.get(key, -1) > shards[key]
    }
    hashes = _content_hashes(instance, list(indexed.values()))
    return {key: hashes.get(indexed[key], "") if key in indexed else "" for key in keys}


def partitions_in_flight(instance: DagsterInstance) -> set[str]:
    """Shards that a queued or running run is already working on: runs of `index_shards`, and
    the runs of a backfill launched from the UI (the implicit asset job, over a range of shards
    each)."""
    runs = instance.get_runs(filters=RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES)))
    return {key for run in runs for key in run_shards(instance, run.tags)}
