"""The collection's index layout, as the real server stores it."""

import uuid

import pytest
from weaviate.classes.config import DataType

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


def _indexes(client, name: str) -> dict[str, tuple[bool, bool]]:
    properties = client.collections.get(name).config.get().properties
    return {p.name: (p.index_filterable, p.index_searchable) for p in properties}


def _chunks(texts: list[str]) -> list:
    from tests.resources.weaviate.test_ingest import _objects

    objects = _objects(len(texts), dim=4)
    for obj, text in zip(objects, texts, strict=True):
        obj.properties["text"] = text
    return objects


def test_by_default_the_text_has_bm25_only_and_ids_filters_only_yet_every_query_answers(
    weaviate_server,
):
    """The default layout drops two indexes no query needs (BENCHMARKS.md, "A node's time"):
    the text's filter index (a filter on a word goes through its BM25 index, same answer) and
    the ids' BM25 index (a keyword search no longer matches shard names)."""
    from weaviate.classes.query import Filter

    from resources.weaviate.ingest import ingest_shard

    name = f"Lean_{uuid.uuid4().hex[:6]}"
    texts = ["the old bridge over the river", "a new bridge", "a garden of roses", "s1 river"]
    with connect(weaviate_server) as client:
        ensure_collection(client, name, IndexLayout())
        try:
            indexes = _indexes(client, name)
            assert indexes["text"] == (False, True)
            assert (
                indexes["doc_id"] == indexes["shard"] == indexes["shard_version"] == (True, False)
            )
            config = client.collections.get(name).config.get()
            index = config.vector_config[VECTOR_NAME].vector_index_config
            assert (type(index.quantizer).__name__, index.ef) == ("_RQConfig", 256)
            ingest_shard(client, name, "s1", "v1", _chunks(texts), expected=4)
            chunks = client.collections.get(name)
            word = Filter.by_property("text").contains_any(["bridge"])
            assert chunks.aggregate.over_all(filters=word, total_count=True).total_count == 2
            phrase = Filter.by_property("text").equal("river")
            assert chunks.aggregate.over_all(filters=phrase, total_count=True).total_count == 2
            found = chunks.query.bm25("roses", limit=3).objects
            assert [o.properties["text"] for o in found] == ["a garden of roses"]
            # "s1" is every chunk's shard, but only one chunk's text says it.
            found = chunks.query.bm25("s1", limit=5).objects
            assert [o.properties["text"] for o in found] == ["s1 river"]
            by_doc = Filter.by_property("doc_id").equal("doc-2")
            assert chunks.aggregate.over_all(filters=by_doc, total_count=True).total_count == 1
        finally:
            client.collections.delete(name)


def test_the_text_filter_index_comes_back_when_asked_for(weaviate_server):
    name = f"Filterable_{uuid.uuid4().hex[:6]}"
    with connect(weaviate_server) as client:
        ensure_collection(client, name, WeaviateResource(text_filterable=True).layout())
        try:
            assert _indexes(client, name)["text"] == (True, True)
        finally:
            client.collections.delete(name)


@pytest.mark.parametrize("kind", ["flat", "hfresh"])
def test_a_flat_or_hfresh_index_with_rq_finds_the_nearest_chunk(weaviate_server, kind):
    from resources.weaviate.ingest import ingest_shard

    name = f"Index_{kind}_{uuid.uuid4().hex[:6]}"
    objects = _chunks([f"chunk {i}" for i in range(40)])
    with connect(weaviate_server) as client:
        ensure_collection(client, name, WeaviateResource(vector_index=kind).layout())
        try:
            index = client.collections.get(name).config.get().vector_config[VECTOR_NAME]
            assert index.vector_index_config.vector_index_type() == kind
            ingest_shard(client, name, "s1", "v1", objects, expected=40)
            chunks = client.collections.get(name)
            for obj in objects[:5]:
                found = chunks.query.near_vector([float(x) for x in obj.vector], limit=1).objects
                assert str(found[0].uuid) == obj.uuid
        finally:
            client.collections.delete(name)


def test_an_unknown_vector_index_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="vector index 'ivf': use one of"):
        IndexLayout(vector_index_type="ivf")


def test_runs_adding_the_same_metadata_key_at_once_both_succeed(weaviate_server, monkeypatch):
    """The second run to add a key is told it exists; it takes the property as added. Here the
    other run's addition lands between this one's schema read and its own addition."""
    from resources.weaviate import schema

    name = f"Race_{uuid.uuid4().hex[:6]}"
    with connect(weaviate_server) as client:
        ensure_collection(client, name, IndexLayout())
        try:
            before = schema._properties_of(client.collections.get(name))
            schema.ensure_metadata_properties(client, name, [{"title": "first run"}])
            reads = iter([before, before])  # both of this run's reads miss it
            real = schema._properties_of
            monkeypatch.setattr(schema, "_properties_of", lambda c: next(reads, None) or real(c))
            types = schema.ensure_metadata_properties(client, name, [{"title": "second run"}])
            assert types["title"] == DataType.TEXT
            assert list(_indexes(client, name)).count("title") == 1
        finally:
            client.collections.delete(name)
