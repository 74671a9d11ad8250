import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, Definitions

from orchestration.definitions import build_resources, defs

ROOT = Path(__file__).resolve().parents[2]


def test_definitions_hold_the_pipeline_and_its_jobs():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {"corpus_shard", "chunks", "embeddings", "weaviate_index", "embedding_profile"}
    assert graph.get(AssetKey("embeddings")).pools == {"gpu"}
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert jobs >= {"register_shards", "index_shards", "profile_embeddings"}


def test_environment_variables_reach_the_resources(monkeypatch, tmp_path):
    monkeypatch.setenv("INDEXER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WEAVIATE_URL", "http://weaviate.example:8080")
    monkeypatch.setenv("WEAVIATE_GRPC_PORT", "50052")
    monkeypatch.setenv("WEAVIATE_API_KEY", "k-123")
    monkeypatch.setenv("SHARD_SIZE", "250")
    resources = build_resources(resolved=True)
    assert resources["corpus"].corpus_path == str(tmp_path / "corpus")
    assert resources["corpus"].shard_size == 250
    weaviate = resources["weaviate"]
    assert (weaviate.url, weaviate.grpc_port, weaviate.api_key) == (
        "http://weaviate.example:8080", 50052, "k-123",
    )  # fmt: skip
    assert weaviate.target().mode == "custom"
    deferred = build_resources()["weaviate"]
    assert "k-123" not in repr(deferred)


def test_dagster_cli_validates_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
