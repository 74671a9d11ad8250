"""The collection's index layout, as the real server stores it."""

import uuid

import pytest

from resources.weaviate import WeaviateResource
from resources.weaviate.schema import VECTOR_NAME, IndexLayout, ensure_collection
from tests.conftest import connect


def test_a_new_collection_takes_the_configured_hnsw_compression_and_shards(weaviate_server):
    name = f"Layout_{uuid.uuid4().hex[:6]}"
    layout = WeaviateResource(
        hnsw_ef_construction=64, hnsw_max_connections=16, compression="rq", shards=2
    ).layout()
    with connect(weaviate_server) as client:
        ensure_collection(client, name, layout)
        try:
            config = client.collections.get(name).config.get()
            index = config.vector_config[VECTOR_NAME].vector_index_config
            assert (index.ef_construction, index.max_connections) == (64, 16)
            assert type(index.quantizer).__name__ == "_RQConfig"
            assert config.sharding_config.desired_count == 2
        finally:
            client.collections.delete(name)


def test_an_unknown_compression_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="compression 'zip': use one of"):
        IndexLayout(compression="zip")


def test_a_replicated_collection_is_written_at_quorum_unless_told_otherwise():
    assert WeaviateResource().ingest_policy().consistency is None  # one copy: the default
    replicated = WeaviateResource(replication_factor=3)
    assert replicated.layout().replication_factor == 3
    assert replicated.ingest_policy().consistency == "QUORUM"
    assert WeaviateResource(
        replication_factor=3, consistency="ALL"
    ).ingest_policy().consistency == ("ALL")


def test_writes_at_a_consistency_level_land_on_a_single_node(weaviate_server):
    from resources.weaviate.ingest import IngestPolicy, consistent, count_shard, ingest_shard
    from tests.resources.weaviate.test_ingest import _objects

    name = f"Quorum_{uuid.uuid4().hex[:6]}"
    with connect(weaviate_server) as client:
        ensure_collection(client, name, IndexLayout(replication_factor=1))
        try:
            policy = IngestPolicy(consistency="QUORUM")
            report = ingest_shard(
                client, name, "s1", "v1", _objects(30), expected=30, policy=policy
            )
            assert report.count_in_weaviate == 30
            read = consistent(client.collections.get(name), "ALL")
            assert count_shard(read, "s1") == 30
            assert client.collections.get(name).config.get().replication_config.factor == 1
        finally:
            client.collections.delete(name)


def test_by_default_the_managed_server_gets_a_shard_per_cpu_and_another_server_its_own_default(
    monkeypatch,
):
    monkeypatch.setattr("resources.weaviate.resource.usable_cpus", lambda: 24)
    assert WeaviateResource(mode="managed").layout().shards == 16
    monkeypatch.setattr("resources.weaviate.resource.usable_cpus", lambda: 2)
    assert WeaviateResource(mode="managed").layout().shards == 2
    elsewhere = WeaviateResource(mode="custom", url="http://weaviate.internal:8080")
    assert elsewhere.layout().shards is None  # Weaviate's default: a shard per node
    assert WeaviateResource(mode="managed", shards=4).layout().shards == 4
