"""What the index asset does when Weaviate refuses some objects."""

import json
import uuid

from dagster import AssetCheckSeverity, DagsterInstance, materialize

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import object_count_matches_chunks, weaviate_index
from orchestration.jobs import register_shards
from resources.corpus.chunking import chunk_uuid
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource

ASSETS = [corpus_shard, chunks, embeddings, weaviate_index, object_count_matches_chunks]


def _setup(tmp_path, sandbox, rejects: str):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [{"id": f"d{i}", "text": f"Document number {i} talks about rivers."} for i in range(8)]
    (corpus / "a.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    data = str(tmp_path / "data")
    resources = {
        "corpus": CorpusResource(corpus_path=str(corpus), data_dir=data),
        "embedder": EmbeddingResource(device="cpu", data_dir=data),
        "weaviate": WeaviateResource(
            mode="local", url=f"http://127.0.0.1:{sandbox.http_port}", grpc_port=sandbox.grpc_port,
            collection=f"Rejects_{uuid.uuid4().hex[:6]}", data_dir=data, rejects=rejects,
        ),
    }  # fmt: skip
    instance = DagsterInstance.ephemeral()
    register_shards.execute_in_process(instance=instance, resources={"corpus": resources["corpus"]})
    return instance, resources


def test_refused_objects_fail_the_shard_by_default(tmp_path, sandbox):
    instance, resources = _setup(tmp_path, sandbox, "fail")
    sandbox.faults.reject_objects({chunk_uuid("d3", 0)}, "refused: vector index is read-only")
    try:
        result = materialize(ASSETS, partition_key="a-s00000", instance=instance,
                             resources=resources, raise_on_error=False)  # fmt: skip
    finally:
        sandbox.faults.clear()
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert "1 of 8 objects of shard a-s00000 were not written" in message
    assert "document 'd3'" in message and "vector index is read-only" in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_with_quarantine_the_rest_is_indexed_and_the_check_warns(tmp_path, sandbox):
    instance, resources = _setup(tmp_path, sandbox, "quarantine")
    sandbox.faults.reject_objects({chunk_uuid("d3", 0)}, "refused: vector index is read-only")
    try:
        result = materialize(ASSETS, partition_key="a-s00000", instance=instance,
                             resources=resources)  # fmt: skip
    finally:
        sandbox.faults.clear()
    metadata = result.asset_materializations_for_node("weaviate_index")[0].metadata
    assert (metadata["objects_in_weaviate"].value, metadata["failed_objects"].value) == (7, 1)
    rejects = resources["corpus"].stage_file("quarantine", "a-s00000", ".weaviate.jsonl")
    [line] = rejects.read_text().splitlines()
    assert json.loads(line)["doc_id"] == "d3"
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["rejected"].value == 1
    assert check.metadata["objects_in_weaviate"].value == 7
