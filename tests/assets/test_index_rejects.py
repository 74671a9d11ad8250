"""What the index asset does when Weaviate refuses some objects.

The refusal is the real server's own: the collection already declares `label` as a text property
(as an earlier corpus left it), and one document of the shard carries a number there, which
Weaviate refuses for that object alone.
"""

import json
import uuid

import pytest
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
from resources.weaviate.ingest import count_shard
from resources.weaviate.schema import ensure_collection, ensure_metadata_properties
from tests.conftest import connect

ASSETS = [corpus_shard, chunks, embeddings, weaviate_index, object_count_matches_chunks]


@pytest.fixture
def client(weaviate_server):
    with connect(weaviate_server) as client:
        yield client


@pytest.fixture
def collection(client):
    """A collection whose `label` property is text."""
    name = f"Rejects_{uuid.uuid4().hex[:6]}"
    ensure_collection(client, name)
    ensure_metadata_properties(client, name, [{"label": "a word"}])
    yield name
    client.collections.delete(name)


def _refusal(collection: str) -> str:
    """What the server says of a number sent to the text property `label`."""
    return f"invalid text property 'label' on class '{collection}': not a string, but float64"


def _setup(tmp_path, server, collection: str, rejects: str):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [{"id": f"d{i}", "text": f"Document number {i} talks about rivers.", "label": "river"}
            for i in range(8)]  # fmt: skip
    docs[3]["label"] = 42
    (corpus / "a.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    data = str(tmp_path / "data")
    resources = {
        "corpus": CorpusResource(corpus_path=str(corpus), data_dir=data),
        "embedder": EmbeddingResource(device="cpu", data_dir=data),
        "weaviate": WeaviateResource(
            mode="local", url=f"http://127.0.0.1:{server.http_port}", grpc_port=server.grpc_port,
            api_key=server.api_key, collection=collection, data_dir=data, rejects=rejects,
        ),
    }  # fmt: skip
    instance = DagsterInstance.ephemeral()
    register_shards.execute_in_process(instance=instance, resources={"corpus": resources["corpus"]})
    return instance, resources


def test_refused_objects_fail_the_shard_by_default(tmp_path, weaviate_server, client, collection):
    instance, resources = _setup(tmp_path, weaviate_server, collection, "fail")
    result = materialize(ASSETS, partition_key="a-s00000", instance=instance,
                         resources=resources, raise_on_error=False)  # fmt: skip
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "weaviate_index"
    message = failure.step_failure_data.user_failure_data.description
    assert "1 of 8 objects of shard a-s00000 were not written" in message
    assert f"document 'd3' (object {chunk_uuid('d3', 0)}): {_refusal(collection)}" in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    # The other seven reached the server, but the shard is not recorded as indexed.
    assert count_shard(client.collections.get(collection), "a-s00000") == 7
    assert not result.asset_materializations_for_node("weaviate_index")
    assert not resources["corpus"].files("a-s00000").weaviate_rejects.exists()


def test_with_quarantine_the_rest_is_indexed_and_the_check_warns(
    tmp_path, weaviate_server, client, collection
):
    instance, resources = _setup(tmp_path, weaviate_server, collection, "quarantine")
    result = materialize(ASSETS, partition_key="a-s00000", instance=instance,
                         resources=resources)  # fmt: skip
    metadata = result.asset_materializations_for_node("weaviate_index")[0].metadata
    assert (metadata["objects_in_weaviate"].value, metadata["failed_objects"].value) == (7, 1)
    rejects = resources["corpus"].files("a-s00000").weaviate_rejects
    assert metadata["rejects_file"].value == str(rejects)
    [line] = rejects.read_text().splitlines()
    assert json.loads(line) == {
        "uuid": chunk_uuid("d3", 0), "doc_id": "d3", "reason": _refusal(collection),
    }  # fmt: skip
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["rejected"].value == 1
    assert check.metadata["objects_in_weaviate"].value == 7
    stored = client.collections.get(collection).query.fetch_objects(limit=100).objects
    assert sorted(o.properties["doc_id"] for o in stored) == [f"d{i}" for i in range(8) if i != 3]
    assert {o.properties["label"] for o in stored} == {"river"}
