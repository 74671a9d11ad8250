"""One dynamic partition per corpus shard, registered from the corpus by `register_shards`."""

from collections.abc import Mapping

from dagster import (
    DagsterInstance,
    DynamicPartitionsDefinition,
    PartitionKeyRange,
    partition_loading_context,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

shard_partitions = DynamicPartitionsDefinition(name="shards")


def run_shards(instance: DagsterInstance, tags: Mapping[str, str]) -> list[str]:
    """The shards a run covers, from its tags: one partition, or the range a backfill run got
    (a backfill policy groups shards into runs)."""
    if PARTITION_NAME_TAG in tags:
        return [tags[PARTITION_NAME_TAG]]
    if ASSET_PARTITION_RANGE_START_TAG not in tags:
        return []
    shard_range = PartitionKeyRange(
        tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
    )
    with partition_loading_context(dynamic_partitions_store=instance):
        return list(shard_partitions.get_partition_keys_in_range(shard_range))
