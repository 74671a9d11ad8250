"""The Definitions that `dagster dev` loads (see workspace.yaml).

Settings come from environment variables through Dagster's `EnvVar`, so the UI shows where each
value comes from and secrets stay out of the run config; unset variables fall back to defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Definitions, EnvVar, ExecutorDefinition, in_process_executor

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import object_count_matches_chunks, weaviate_index
from assets.profile import embedding_profile
from orchestration.automation import build_automation_sensor, following_upstream
from orchestration.jobs import index_shards, profile_embeddings, register_shards
from orchestration.reindex import reindex
from orchestration.removal import remove_shards
from orchestration.schedules import NIGHTLY, build_index_schedule
from orchestration.sensors import build_corpus_sensor, build_retry_sensor
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.embedding.model_source import DEFAULT_MODEL
from resources.weaviate import WeaviateResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = str(PROJECT_ROOT / ".data")


def build_resources(resolved: bool = False) -> dict:
    """The project's resources, configured from the environment.

    For Dagster they hold `EnvVar`s, which the UI shows by name and resolves at run time; with
    `resolved=True` they hold plain values, for commands that use them outside a run.
    """

    def env(name: str, default, kind=str):
        value = os.environ.get(name)
        if not value:
            return default
        if resolved:
            return kind(value)
        return EnvVar.int(name) if kind is int else EnvVar(name)

    data_dir_value = os.environ.get("INDEXER_DATA_DIR") or DEFAULT_DATA_DIR
    data_dir = env("INDEXER_DATA_DIR", DEFAULT_DATA_DIR)
    return {
        "corpus": CorpusResource(
            corpus_path=env("CORPUS_PATH", str(Path(data_dir_value) / "corpus")),
            shard_size=env("SHARD_SIZE", 1000, int),
            data_dir=data_dir,
        ),
        "embedder": EmbeddingResource(
            model=env("EMBEDDING_MODEL", DEFAULT_MODEL),
            device=env("EMBEDDING_DEVICE", "auto"),
            data_dir=data_dir,
        ),
        "weaviate": WeaviateResource(
            mode=env("WEAVIATE_MODE", "auto"),
            url=env("WEAVIATE_URL", None),
            grpc_port=env("WEAVIATE_GRPC_PORT", 50051, int),
            api_key=env("WEAVIATE_API_KEY", None),
            collection=env("WEAVIATE_COLLECTION", "Chunks"),
            data_dir=data_dir,
            sandbox_port=env("WEAVIATE_SANDBOX_PORT", 8090, int),
            sandbox_grpc_port=env("WEAVIATE_SANDBOX_GRPC_PORT", 50060, int),
        ),
    }


# Keeping the index fresh (README): sensors and the schedule ship stopped; their settings are
# read when the definitions load.
index_asset = following_upstream(weaviate_index)


def build_definitions(executor: ExecutorDefinition = in_process_executor) -> Definitions:
    """The project's definitions, with the executor that runs each run's steps.

    In process by default: a run's steps form a chain (chunks, embeddings, index, check) with
    nothing to run side by side, and a process per step would import torch and the model
    stack again for each of them, seconds of overhead per run (BENCHMARKS.md). Concurrency
    pools still hold, so two runs never embed on one GPU at once. deploy/k8s passes the
    Kubernetes executor, which gives the embeddings step a GPU pod of its own.
    """
    return Definitions(
        assets=[corpus_shard, chunks, embeddings, index_asset, embedding_profile],
        asset_checks=[object_count_matches_chunks],
        jobs=[register_shards, index_shards, profile_embeddings, remove_shards, reindex],
        schedules=[build_index_schedule(os.environ.get("INDEX_SCHEDULE_CRON") or NIGHTLY)],
        sensors=[
            build_corpus_sensor(os.environ.get("CORPUS_ON_REMOVED") or "flag"),
            build_retry_sensor(int(os.environ.get("INDEX_MAX_ATTEMPTS") or 3)),
            build_automation_sensor(index_asset),
        ],
        resources=build_resources(),
        executor=executor,
    )


defs = build_definitions()
