"""One dynamic partition per corpus shard, registered from the corpus by `register_shards`."""

from dagster import DynamicPartitionsDefinition

shard_partitions = DynamicPartitionsDefinition(name="shards")
