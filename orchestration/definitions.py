"""The Definitions that `dagster dev` loads (see workspace.yaml).

Every setting, the resources' included, comes from the environment or its default
(`resources/settings.py`).
"""

from __future__ import annotations

from dagster import Definitions, ExecutorDefinition, in_process_executor

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import object_count_matches_chunks, weaviate_index
from assets.profile import embedding_profile
from orchestration.automation import build_automation_sensor, following_upstream
from orchestration.jobs import index_shards, profile_embeddings, register_shards
from orchestration.reindex import reindex
from orchestration.removal import remove_shards
from orchestration.resources import build_resources
from orchestration.schedules import build_index_schedule
from orchestration.sensors import build_corpus_sensor, build_retry_sensor
from orchestration.workarounds import apply as apply_workarounds
from resources import settings

# Keeping the index fresh (README): sensors and the schedule ship stopped; their settings are
# read when the definitions load.
index_asset = following_upstream(weaviate_index)


def build_definitions(executor: ExecutorDefinition = in_process_executor) -> Definitions:
    """The project's definitions, with the executor that runs each run's steps.

    In process by default: a run's steps form a chain (chunks, embeddings, index, check) with
    nothing to run side by side, and a process per step would import torch and the model
    stack again for each of them, seconds of overhead per run (BENCHMARKS.md). Concurrency
    pools still hold, so two runs never embed on one GPU at once. deploy/k8s passes the
    Kubernetes executor, which gives the embeddings step a GPU pod of its own. Every process
    that loads them gets the repairs to Dagster's internals (`orchestration/workarounds.py`).
    """
    apply_workarounds()
    return Definitions(
        assets=[corpus_shard, chunks, embeddings, index_asset, embedding_profile],
        asset_checks=[object_count_matches_chunks],
        jobs=[register_shards, index_shards, profile_embeddings, remove_shards, reindex],
        schedules=[build_index_schedule(settings.index_schedule_cron())],
        sensors=[
            build_corpus_sensor(settings.corpus_on_removed()),
            build_retry_sensor(settings.index_max_attempts()),
            build_automation_sensor(index_asset),
        ],
        resources=build_resources(),
        executor=executor,
    )


defs = build_definitions()
