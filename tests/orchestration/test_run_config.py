"""A run config that sets one field of a resource keeps every other setting from the environment.

Dagster replaces the resource that the definitions configured by the run config's values and
falls back to the fields' defaults for the rest: `resources: {weaviate: {config: {rejects:
quarantine}}}` in the launchpad must still index into the server WEAVIATE_URL names. The tests
run the project's own definitions and resources, with the environment as a user would set it,
and look at what the run did.
"""

import json
import math
import uuid
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, OpExecutionContext, job, materialize, op

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from orchestration.definitions import build_definitions
from orchestration.resources import build_resources
from resources.tokenizer.model_source import resolve_model_path
from resources.weaviate.server import LocalServer
from tests.conftest import connect

SHARD = "a-s00000"


def _corpus(root: Path, docs: int = 6) -> Path:
    folder = root / "corpus"
    folder.mkdir()
    lines = [
        json.dumps({"id": f"d{i}", "text": f"Document {i} is about a river."}) for i in range(docs)
    ]
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def _metadata(instance: DagsterInstance, asset: str) -> dict:
    [record] = instance.fetch_materializations(AssetKey(asset), limit=2).records
    return {k: v.value for k, v in record.event_log_entry.asset_materialization.metadata.items()}


@pytest.fixture
def no_managed_server(monkeypatch):
    """A run that fell back to the managed server would start one, or write into one already
    running on this machine: here it fails instead, saying so."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"the run fell back to the managed server: {self.describe()}")

    monkeypatch.setattr(LocalServer, "start", refuse)


def test_one_weaviate_field_in_the_run_config_indexes_where_the_environment_points(
    tmp_path, monkeypatch, weaviate_server, no_managed_server
):
    collection = f"RunConfig_{uuid.uuid4().hex[:8]}"
    environment = {
        "CORPUS_PATH": str(_corpus(tmp_path)),
        "INDEXER_DATA_DIR": str(tmp_path / "data"),
        "EMBEDDING_DEVICE": "cpu",
        "WEAVIATE_MODE": "local",
        "WEAVIATE_URL": f"http://127.0.0.1:{weaviate_server.http_port}",
        "WEAVIATE_GRPC_PORT": str(weaviate_server.grpc_port),
        "WEAVIATE_API_KEY": weaviate_server.api_key,
        "WEAVIATE_COLLECTION": collection,
        "WEAVIATE_EF_CONSTRUCTION": "64",
        "WEAVIATE_MAX_CONNECTIONS": "16",
        "WEAVIATE_SHARDS": "2",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions()
    instance = DagsterInstance.ephemeral()
    quarantine = {"resources": {"weaviate": {"config": {"rejects": "quarantine"}}}}
    defs.resolve_job_def("register_shards").execute_in_process(instance=instance)
    result = defs.resolve_job_def("index_shards").execute_in_process(
        instance=instance, run_config=quarantine, partition_key=SHARD
    )
    assert result.success
    with connect(weaviate_server) as client:
        try:
            stored = client.collections.get(collection)
            count = stored.aggregate.over_all(total_count=True).total_count
            config = stored.config.get()
        finally:
            client.collections.delete(collection)
    assert count == _metadata(instance, "chunks")["chunks"] == 6
    hnsw = config.vector_config["default"].vector_index_config
    assert (hnsw.ef_construction, hnsw.max_connections) == (64, 16)
    assert config.sharding_config.desired_count == 2
    index = _metadata(instance, "weaviate_index")
    assert index["weaviate_mode"] == "local" and index["collection"] == collection
    assert index["weaviate"] == f"local at 127.0.0.1:{weaviate_server.http_port}"


def test_one_embedder_field_in_the_run_config_keeps_the_model_from_the_environment(
    tmp_path, monkeypatch
):
    model = str(resolve_model_path())  # the packaged model, named by its folder
    monkeypatch.setenv("EMBEDDING_MODEL", model)
    monkeypatch.setenv("EMBEDDING_DEVICE", "cpu")
    monkeypatch.setenv("CORPUS_PATH", str(_corpus(tmp_path)))
    monkeypatch.setenv("INDEXER_DATA_DIR", str(tmp_path / "data"))
    defs = build_definitions()
    instance = DagsterInstance.ephemeral()
    defs.resolve_job_def("register_shards").execute_in_process(instance=instance)
    result = materialize(
        [corpus_shard, chunks, embeddings],
        resources=build_resources(),
        run_config={"resources": {"embedder": {"config": {"batch_size": 4}}}},
        partition_key=SHARD,
        instance=instance,
    )
    assert result.success
    metadata = _metadata(instance, "embeddings")
    assert (metadata["model"], metadata["device"]) == (model, "cpu")
    assert metadata["batches"] == math.ceil(metadata["chunks"] / 4)
    assert (tmp_path / "data" / "embeddings" / f"{SHARD}.parquet").is_file()


# Each resource's variables, set to values other than the defaults: (variable, value, field,
# the field's value).
ENVIRONMENT = {
    "corpus": [
        ("CORPUS_PATH", "/corpora/c1", "corpus_path", "/corpora/c1"),
        ("SHARD_SIZE", "7", "shard_size", 7),
        ("INDEXER_DATA_DIR", "/data/d1", "data_dir", "/data/d1"),
    ],
    "embedder": [
        ("EMBEDDING_MODEL", "all-MiniLM-L6-v2", "model", "all-MiniLM-L6-v2"),
        ("EMBEDDING_DEVICE", "cpu", "device", "cpu"),
        ("INDEXER_DATA_DIR", "/data/d2", "data_dir", "/data/d2"),
    ],
    "weaviate": [
        ("WEAVIATE_MODE", "custom", "mode", "custom"),
        ("WEAVIATE_URL", "http://w.example:8081", "url", "http://w.example:8081"),
        ("WEAVIATE_GRPC_PORT", "50061", "grpc_port", 50061),
        ("WEAVIATE_COLLECTION", "Other", "collection", "Other"),
        ("INDEXER_DATA_DIR", "/data/d3", "data_dir", "/data/d3"),
        ("WEAVIATE_MANAGED_PORT", "18079", "managed_port", 18079),
        ("WEAVIATE_MANAGED_GRPC_PORT", "18050", "managed_grpc_port", 18050),
        ("WEAVIATE_MANAGED_CLUSTER_PORT", "17110", "managed_cluster_port", 17110),
        ("WEAVIATE_BATCH_SIZE", "300", "batch_size", 300),
        ("WEAVIATE_CONCURRENT_REQUESTS", "4", "concurrent_requests", 4),
        ("WEAVIATE_BATCH_TIMEOUT_SECONDS", "45", "batch_timeout_seconds", 45),
        ("WEAVIATE_EF_CONSTRUCTION", "64", "hnsw_ef_construction", 64),
        ("WEAVIATE_MAX_CONNECTIONS", "16", "hnsw_max_connections", 16),
        ("WEAVIATE_COMPRESSION", "sq", "compression", "sq"),
        ("WEAVIATE_VECTOR_INDEX", "flat", "vector_index", "flat"),
        ("WEAVIATE_EF", "200", "ef", 200),
        ("WEAVIATE_TEXT_FILTERABLE", "true", "text_filterable", True),
        ("WEAVIATE_SHARDS", "3", "shards", 3),
        ("WEAVIATE_REPLICATION_FACTOR", "3", "replication_factor", 3),
        ("WEAVIATE_REPLICA_SYNC_SECONDS", "9", "replica_sync_seconds", 9),
        ("WEAVIATE_CONSISTENCY", "ALL", "consistency", "ALL"),
        ("WEAVIATE_ASYNC_INDEXING", "false", "async_indexing", False),
    ],
}
ONE_FIELD = {
    "corpus": {"strict": True},
    "embedder": {"dtype": "float32"},
    "weaviate": {"rejects": "quarantine"},
}


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_one_field_in_the_run_config_keeps_every_setting_from_the_environment(name, monkeypatch):
    """Every field that has a variable, as a step of the run gets the resource."""
    for variable, value, _, _ in ENVIRONMENT[name]:
        monkeypatch.setenv(variable, value)
    expected = {field: value for _, _, field, value in ENVIRONMENT[name]} | ONE_FIELD[name]
    seen: dict = {}

    @op(required_resource_keys={name})
    def look(context: OpExecutionContext) -> None:
        resource = getattr(context.resources, name)
        seen.update({field: getattr(resource, field) for field in expected})

    @job(resource_defs=build_resources())
    def one_step() -> None:
        look()

    one_step.execute_in_process(run_config={"resources": {name: {"config": ONE_FIELD[name]}}})
    assert seen == expected
