"""The index follows its upstream: a shard whose vectors changed is ingested again.

`AutomationCondition.eager()` on `weaviate_index` requests a shard's ingest when its
`embeddings` partition was updated by a run that did not also ingest it (a re-run of the
embeddings alone, a run that failed at ingest), and waits while either is in progress. The
sensor that evaluates it ships stopped, like the other sensors.
"""

from dagster import (
    AssetsDefinition,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

INDEX_FOLLOWS_UPSTREAM = AutomationCondition.eager()


def following_upstream(index: AssetsDefinition) -> AssetsDefinition:
    """The index asset with the eager condition, set here so the asset module stays as it is."""
    return index.map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=INDEX_FOLLOWS_UPSTREAM)
    )


def build_automation_sensor(index: AssetsDefinition) -> AutomationConditionSensorDefinition:
    return AutomationConditionSensorDefinition(
        "index_follows_upstream",
        target=AssetSelection.assets(index),
        default_status=DefaultSensorStatus.STOPPED,
        description="Ingests shards whose vectors changed since they were last ingested.",
    )
