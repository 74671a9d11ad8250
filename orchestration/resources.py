"""The project's resources, configured from environment variables.

Settings go through Dagster's `EnvVar`, so the UI shows where each value comes from and secrets
stay out of the run config; unset variables fall back to defaults. This module imports no
assets, so commands that only need a resource (`weaviate-indexer weaviate status`) start fast.
"""

from __future__ import annotations

import os

from dagster import EnvVar

from resources import settings
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.tokenizer.model_source import DEFAULT_MODEL
from resources.weaviate import WeaviateResource


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

    data_dir = env("INDEXER_DATA_DIR", settings.data_dir())
    return {
        # Its settings are its fields' defaults (resources/settings.py), so that a launchpad
        # run config setting only `strict` keeps them.
        "corpus": CorpusResource(),
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
            managed_port=env("WEAVIATE_MANAGED_PORT", 8079, int),
            managed_grpc_port=env("WEAVIATE_MANAGED_GRPC_PORT", 50050, int),
            managed_cluster_port=env("WEAVIATE_MANAGED_CLUSTER_PORT", 7110, int),
            batch_size=env("WEAVIATE_BATCH_SIZE", 200, int),
            concurrent_requests=env("WEAVIATE_CONCURRENT_REQUESTS", 2, int),
            batch_timeout_seconds=env("WEAVIATE_BATCH_TIMEOUT_SECONDS", 30, int),
            hnsw_ef_construction=env("WEAVIATE_EF_CONSTRUCTION", 128, int),
            hnsw_max_connections=env("WEAVIATE_MAX_CONNECTIONS", 32, int),
            compression=env("WEAVIATE_COMPRESSION", "none"),
            shards=env("WEAVIATE_SHARDS", 0, int),
            replication_factor=env("WEAVIATE_REPLICATION_FACTOR", 1, int),
            replica_sync_seconds=env("WEAVIATE_REPLICA_SYNC_SECONDS", 5, int),
            consistency=env("WEAVIATE_CONSISTENCY", None),
            # Read here, not through EnvVar: it chooses how the managed server starts.
            async_indexing=os.environ.get("WEAVIATE_ASYNC_INDEXING", "true").lower()
            in ("true", "1", "yes"),
        ),
    }
