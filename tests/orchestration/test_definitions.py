import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, Definitions
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from orchestration.definitions import build_definitions, build_resources, defs

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
    resources = build_resources()
    assert resources["corpus"].corpus_path == str(tmp_path / "corpus")
    assert resources["corpus"].shard_size == 250
    weaviate = resources["weaviate"]
    assert (weaviate.url, weaviate.grpc_port) == ("http://weaviate.example:8080", 50052)
    assert weaviate.settings().api_key == "k-123"  # read when a client connects
    assert weaviate.target().mode == "custom"


def test_the_ui_names_each_variable_and_never_shows_the_api_key(monkeypatch):
    """The UI reads the repository's snapshot: each resource's configured values and config
    schema, every job's. A field's value from the environment is read when a run starts, and
    its description names the variable; the API key is read when a client connects."""
    monkeypatch.setenv("WEAVIATE_API_KEY", "k-4f1c9e")
    snapshot = serialize_value(RepositorySnap.from_def(build_definitions().get_repository_def()))
    assert "(default: WEAVIATE_URL)" in snapshot
    assert "(default: WEAVIATE_GRPC_PORT, else 50051)" in snapshot
    assert "k-4f1c9e" not in snapshot
    assert "k-4f1c9e" not in repr(build_resources()["weaviate"])


def test_dagster_cli_validates_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
