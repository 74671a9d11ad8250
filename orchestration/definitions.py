"""The Definitions that `dagster dev` loads (see workspace.yaml).

Settings come from environment variables through Dagster's `EnvVar`, so the UI shows where each
value comes from and secrets stay out of the run config; unset variables fall back to defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Definitions, EnvVar

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import object_count_matches_chunks, weaviate_index
from orchestration.jobs import index_shards, register_shards
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = str(PROJECT_ROOT / ".data")


def _env(name: str, default):
    return EnvVar(name) if os.environ.get(name) else default


def _env_int(name: str, default: int):
    return EnvVar.int(name) if os.environ.get(name) else default


def build_resources() -> dict:
    data_dir = _env("INDEXER_DATA_DIR", DEFAULT_DATA_DIR)
    data_dir_value = os.environ.get("INDEXER_DATA_DIR") or DEFAULT_DATA_DIR
    return {
        "corpus": CorpusResource(
            corpus_path=_env("CORPUS_PATH", str(Path(data_dir_value) / "corpus")),
            shard_size=_env_int("SHARD_SIZE", 1000),
            data_dir=data_dir,
        ),
        "embedder": EmbeddingResource(
            device=_env("EMBEDDING_DEVICE", "auto"),
            data_dir=data_dir,
        ),
        "weaviate": WeaviateResource(
            mode=_env("WEAVIATE_MODE", "auto"),
            url=_env("WEAVIATE_URL", None),
            grpc_port=_env_int("WEAVIATE_GRPC_PORT", 50051),
            api_key=_env("WEAVIATE_API_KEY", None),
            collection=_env("WEAVIATE_COLLECTION", "Chunks"),
            data_dir=data_dir,
        ),
    }


defs = Definitions(
    assets=[corpus_shard, chunks, embeddings, weaviate_index],
    asset_checks=[object_count_matches_chunks],
    jobs=[register_shards, index_shards],
    resources=build_resources(),
)
