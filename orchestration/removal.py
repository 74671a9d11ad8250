"""Removing shards whose input left the corpus: their objects in Weaviate, then their partitions.

Objects go first: if the run dies half-way, the partition is still there to say what is left,
and a re-run finds fewer objects and deletes the rest.
"""

import weaviate
from dagster import Config, OpExecutionContext, job, op

from assets.partitions import shard_partitions
from resources.weaviate import WeaviateResource
from resources.weaviate.ingest import shard_filter


class RemoveShardsConfig(Config):
    shards: list[str]


def delete_shard_objects(collection: weaviate.collections.Collection, shard: str) -> int:
    """Every object of the shard; Weaviate deletes at most QUERY_MAXIMUM_RESULTS per call."""
    deleted = 0
    while True:
        result = collection.data.delete_many(where=shard_filter(shard))
        deleted += result.successful
        if result.failed:
            raise RuntimeError(f"Weaviate failed to delete {result.failed} objects of {shard}")
        if result.matches == 0 or result.successful == 0:
            return deleted


@op
def remove_shard_objects(
    context: OpExecutionContext, config: RemoveShardsConfig, weaviate: WeaviateResource
) -> int:
    """Delete the shards' objects from the index, then their partitions."""
    total = 0
    with weaviate.client() as client:
        collection = client.collections.get(weaviate.collection)
        for key in config.shards:
            deleted = delete_shard_objects(collection, key)
            if context.instance.has_dynamic_partition(shard_partitions.name, key):
                context.instance.delete_dynamic_partition(shard_partitions.name, key)
            context.log.info(f"shard {key}: {deleted} objects deleted, partition removed")
            total += deleted
    context.add_output_metadata({"shards": len(config.shards), "objects_deleted": total})
    return total


@job(description="Delete removed shards' objects from Weaviate and their partitions.")
def remove_shards() -> None:
    remove_shard_objects()
