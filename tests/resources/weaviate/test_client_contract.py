"""Contract tests: what weaviate-client observes from the real Weaviate server the project runs.

The ingest, re-index and check code rely on these behaviours (per-object batch errors,
idempotent overwrites, the delete cap, filters, counts); pinning them here shows which one
changed when the pinned server or client moves. Each test makes its own collection in the
session's server and drops it afterwards.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuid_lib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import weaviate
from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, MetadataQuery, Sort
from weaviate.collections import Collection
from weaviate.exceptions import UnexpectedStatusCodeError
from weaviate.util import generate_uuid5

from resources.weaviate.schema import ensure_metadata_properties
from resources.weaviate.server import WEAVIATE_VERSION
from tests.conftest import WeaviateTarget, connect


@pytest.fixture
def client(weaviate_target: WeaviateTarget) -> Iterator[weaviate.WeaviateClient]:
    with connect(weaviate_target) as c:
        yield c


@pytest.fixture
def name(client: weaviate.WeaviateClient) -> Iterator[str]:
    collection_name = f"Contract_{uuid_lib.uuid4().hex[:10]}"
    yield collection_name
    client.collections.delete(collection_name)


PROPERTIES = [
    Property(name="doc_id", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
    Property(name="body", data_type=DataType.TEXT),
    Property(name="n", data_type=DataType.INT),
    Property(name="score", data_type=DataType.NUMBER),
    Property(name="flag", data_type=DataType.BOOL),
    Property(name="when", data_type=DataType.DATE),
    Property(name="ref", data_type=DataType.UUID),
    Property(name="tags", data_type=DataType.TEXT_ARRAY),
    Property(name="counts", data_type=DataType.INT_ARRAY),
]


def make(client: weaviate.WeaviateClient, name: str) -> Collection:
    return client.collections.create(
        name, properties=PROPERTIES, vector_config=Configure.Vectors.self_provided()
    )


def ingest(collection: Collection, rows: list[tuple[dict[str, Any], list[float] | None]]) -> None:
    """One BatchObjects call; the batching context manager is exercised by the batch tests."""
    result = collection.data.insert_many(
        [
            DataObject(properties=props, uuid=generate_uuid5(i), vector=vector)
            for i, (props, vector) in enumerate(rows)
        ]
    )
    assert result.errors == {}


def test_connect_meta_ready_live(client: weaviate.WeaviateClient) -> None:
    meta = client.get_meta()
    assert client.is_ready() and client.is_live() and client.is_connected()
    assert meta["version"] == WEAVIATE_VERSION
    assert int(meta["grpcMaxMessageSize"]) > 0
    assert "modules" in meta


def test_schema_create_get_list_exists_delete(client: weaviate.WeaviateClient, name: str) -> None:
    make(client, name)
    assert client.collections.exists(name)
    assert name in client.collections.list_all(simple=True)

    config = client.collections.get(name).config.get()
    assert config.name == name
    props = {p.name: p for p in config.properties}
    assert props["doc_id"].data_type == DataType.TEXT
    assert props["doc_id"].tokenization == Tokenization.FIELD
    assert props["body"].tokenization == Tokenization.WORD
    assert props["n"].data_type == DataType.INT
    assert props["when"].data_type == DataType.DATE
    assert props["tags"].data_type == DataType.TEXT_ARRAY
    assert props["n"].index_filterable is True
    assert config.vector_config is not None
    assert config.vector_config["default"].vector_index_config.distance_metric.value == "cosine"
    assert config.multi_tenancy_config.enabled is False
    assert config.replication_config.factor == 1

    with pytest.raises(UnexpectedStatusCodeError) as err:
        make(client, name)
    assert err.value.status_code == 422
    assert "already exists" in err.value.message

    client.collections.delete(name)
    assert not client.collections.exists(name)
    assert name not in client.collections.list_all(simple=True)


def test_lowercase_name_is_capitalized(client: weaviate.WeaviateClient, name: str) -> None:
    response = client._connection.post(  # the raw REST call, bypassing the client's own fix-up
        "/schema", weaviate_object={"class": name[0].lower() + name[1:], "vectorizer": "none"}
    )
    assert response.json()["class"] == name
    assert client.collections.exists(name)


def test_invalid_class_is_rejected(client: weaviate.WeaviateClient, name: str) -> None:
    response = client._connection.post(
        "/schema",
        weaviate_object={"class": name, "properties": [{"name": "bad name", "dataType": ["text"]}]},
        status_codes=None,
    )
    assert response.status_code == 422
    assert not client.collections.exists(name)


def test_shards_and_nodes(client: weaviate.WeaviateClient, name: str) -> None:
    """Node statistics count only objects already flushed to disk segments, so right after a
    write they lag; the exact count the checks compare against comes from an aggregate."""
    collection = make(client, name)
    ingest(collection, [({"doc_id": f"d{i}"}, [1.0, float(i), 0.0]) for i in range(3)])

    shards = collection.config.get_shards()
    assert len(shards) == 1 and shards[0].status == "READY"

    nodes = client.cluster.nodes(collection=name, output="verbose")
    assert [(n.name, n.status, n.version) for n in nodes] == [
        ("node1", "HEALTHY", WEAVIATE_VERSION)
    ]
    assert [(s.collection, s.name) for s in nodes[0].shards] == [(name, shards[0].name)]
    assert nodes[0].shards[0].object_count <= 3
    assert collection.aggregate.over_all(total_count=True).total_count == 3


def test_object_get_head_delete_by_id(
    client: weaviate.WeaviateClient, name: str, weaviate_target: WeaviateTarget
) -> None:
    collection = make(client, name)
    uid = collection.data.insert({"doc_id": "one", "n": 7}, vector=[0.5, 0.5, 0.0])
    assert collection.data.exists(uid)

    obj = collection.query.fetch_object_by_id(uid, include_vector=True)
    assert obj is not None and obj.properties["doc_id"] == "one" and obj.properties["n"] == 7
    assert obj.vector["default"] == pytest.approx([0.5, 0.5, 0.0])

    headers = (
        {"Authorization": f"Bearer {weaviate_target.api_key}"} if weaviate_target.api_key else {}
    )
    base = f"http://{weaviate_target.host}:{weaviate_target.http_port}/v1/objects/{name}"
    got = httpx.get(f"{base}/{uid}", params={"include": "vector"}, headers=headers)
    assert got.status_code == 200
    assert got.json()["properties"]["doc_id"] == "one"
    assert got.json()["vectors"]["default"] == pytest.approx([0.5, 0.5, 0.0])
    assert httpx.head(f"{base}/{uid}", headers=headers).status_code == 204

    with pytest.raises(UnexpectedStatusCodeError) as err:
        collection.data.insert({"doc_id": "again"}, uuid=uid, vector=[0.5, 0.5, 0.0])
    assert err.value.status_code == 422

    assert collection.data.delete_by_id(uid) is True
    assert collection.data.exists(uid) is False
    # Deleting an absent object is answered 204 like a real delete: the client cannot tell.
    assert collection.data.delete_by_id(uid) is True
    assert httpx.delete(f"{base}/{uid}", headers=headers).status_code == 204
    assert collection.query.fetch_object_by_id(uid) is None
    assert httpx.get(f"{base}/{uid}", headers=headers).status_code == 404
    assert httpx.head(f"{base}/{uid}", headers=headers).status_code == 404


def test_batch_per_object_errors(client: weaviate.WeaviateClient, name: str) -> None:
    """A refused object fails alone, with the server's reason, and its neighbours are stored."""
    collection = make(client, name)
    # The first vector sets the index's dimension; with none set, objects of one batch race
    # to set it and which of them fails depends on the order they reach the index.
    collection.data.insert({"doc_id": "first"}, uuid=generate_uuid5("first"), vector=[1, 2, 3])
    with collection.batch.fixed_size(batch_size=100) as batch:
        for i in range(10):
            batch.add_object(
                {"doc_id": f"ok-{i}", "n": i}, uuid=generate_uuid5(i), vector=[1, 2, 3]
            )
        bad_dim = batch.add_object({"doc_id": "bad-dim"}, vector=[1.0, 2.0, 3.0, 4.0])
        bad_type = batch.add_object({"doc_id": "bad-type", "n": "seven"}, vector=[1, 2, 3])
        bad_text = batch.add_object({"doc_id": 12.5}, vector=[1.0, 2.0, 3.0])
    failed = {
        uuid_lib.UUID(str(f.object_.uuid)): f.message for f in collection.batch.failed_objects
    }
    assert set(failed) == {bad_dim, bad_type, bad_text}
    assert (
        "new node has a vector with length 4. Existing nodes have vectors with length 3: "
        "vector dimensions do not match the index dimensions"
    ) in failed[bad_dim]
    assert failed[bad_type] == (
        f"invalid integer property 'n' on class '{name}': requires an integer, "
        "the given value is 'seven'"
    )
    assert failed[bad_text] == (
        f"invalid text property 'doc_id' on class '{name}': not a string, but float64"
    )
    assert len(collection) == 11
    assert not any(collection.data.exists(uid) for uid in (bad_dim, bad_type, bad_text))


def test_batch_overwrite_is_idempotent(client: weaviate.WeaviateClient, name: str) -> None:
    collection = make(client, name)
    for version, vector in (("v1", [1.0, 0.0]), ("v2", [0.0, 1.0])):
        with collection.batch.fixed_size(batch_size=2) as batch:
            for i in range(5):
                batch.add_object(
                    {"doc_id": f"{version}-{i}", "n": i},
                    uuid=generate_uuid5(i),
                    vector=[*vector, i],
                )
        assert collection.batch.failed_objects == []
    assert len(collection) == 5
    by_doc = Filter.by_property("doc_id")
    assert collection.query.fetch_objects(filters=by_doc.equal("v1-3")).objects == []
    assert len(collection.query.fetch_objects(filters=by_doc.equal("v2-3")).objects) == 1
    obj = collection.query.fetch_object_by_id(generate_uuid5(3), include_vector=True)
    assert obj is not None and obj.properties["doc_id"] == "v2-3"
    assert obj.vector["default"] == pytest.approx([0.0, 1.0, 3.0])


def test_batch_all_types_round_trip(client: weaviate.WeaviateClient, name: str) -> None:
    collection = make(client, name)
    when = dt.datetime(2024, 5, 17, 8, 30, tzinfo=dt.UTC)
    ref = uuid_lib.UUID("12345678-1234-5678-1234-567812345678")
    props = {
        "doc_id": "doc-1",
        "body": "Some body text",
        "n": 42,
        "score": 0.25,
        "flag": True,
        "when": when,
        "ref": ref,
        "tags": ["a", "b"],
        "counts": [1, 2, 3],
    }
    ingest(collection, [(props, [0.1, 0.2, 0.3])])
    obj = collection.query.fetch_object_by_id(generate_uuid5(0))
    assert obj is not None
    assert obj.properties == props


def test_named_vector_input_and_output(client: weaviate.WeaviateClient, name: str) -> None:
    collection = make(client, name)
    result = collection.data.insert_many(
        [
            DataObject({"n": 1}, uuid=generate_uuid5(1), vector={"default": [0.0, 1.0]}),
            DataObject({"n": 2}, uuid=generate_uuid5(2), vector={"default": [1.0, 0.0]}),
        ]
    )
    assert result.errors == {}
    hits = collection.query.near_vector([0.9, 0.1], target_vector="default", include_vector=True)
    assert [o.properties["n"] for o in hits.objects] == [2, 1]
    assert hits.objects[0].vector == {"default": pytest.approx([1.0, 0.0])}


def test_batch_to_an_unknown_collection_creates_it(client: weaviate.WeaviateClient) -> None:
    """Auto-schema is on: a write to a misspelt collection name succeeds into a new collection
    with guessed types (an int becomes a number), so the project creates its collections
    itself and never relies on a write failing."""
    ghost_name = f"Ghost_{uuid_lib.uuid4().hex[:8]}"
    ghost = client.collections.get(ghost_name)
    try:
        with ghost.batch.fixed_size(batch_size=10) as batch:
            uid = batch.add_object({"doc_id": "x", "n": 3, "tags": ["a"]}, vector=[1.0, 0.0])
        assert ghost.batch.failed_objects == []
        assert client.collections.exists(ghost_name)
        props = {p.name: p for p in ghost.config.get().properties}
        assert {n: p.data_type for n, p in props.items()} == {
            "doc_id": DataType.TEXT,
            "n": DataType.NUMBER,
            "tags": DataType.TEXT_ARRAY,
        }
        assert props["doc_id"].tokenization == Tokenization.WORD
        obj = ghost.query.fetch_object_by_id(uid, include_vector=True)
        assert obj is not None and obj.properties == {"doc_id": "x", "n": 3.0, "tags": ["a"]}
        assert obj.vector == {"default": [1.0, 0.0]}
    finally:
        client.collections.delete(ghost_name)


ROWS: list[dict[str, Any]] = [
    {
        "doc_id": "doc-7",
        "body": "The quick brown fox",
        "n": 1,
        "score": 0.5,
        "flag": True,
        "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "ref": uuid_lib.UUID(int=1),
        "tags": ["red", "green"],
        "counts": [1, 2],
    },
    {
        "doc_id": "doc-7b",
        "body": "jumps over the lazy dog",
        "n": 2,
        "score": 1.5,
        "flag": False,
        "when": dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
        "ref": uuid_lib.UUID(int=2),
        "tags": ["blue"],
        "counts": [3],
    },
    {
        "doc_id": "other",
        "body": "Quick dog, brown cat",
        "n": 3,
        "score": 2.5,
        "flag": True,
        "when": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        "ref": uuid_lib.UUID(int=3),
        "tags": ["red", "blue"],
        "counts": [2, 5],
    },
]


def filter_cases() -> list[tuple[str, Any, set[int]]]:
    p = Filter.by_property
    return [
        ("text field equal", p("doc_id").equal("doc-7"), {0}),
        ("text field not equal", p("doc_id").not_equal("doc-7"), {1, 2}),
        ("text field like *", p("doc_id").like("doc-7*"), {0, 1}),
        ("text field like ?", p("doc_id").like("doc-?"), {0}),
        ("text field contains_any", p("doc_id").contains_any(["doc-7", "other"]), {0, 2}),
        ("text word equal (tokens)", p("body").equal("QUICK brown"), {0, 2}),
        ("text word equal one token", p("body").equal("dog"), {1, 2}),
        ("text word like", p("body").like("qu*"), {0, 2}),
        ("text word contains_all", p("body").contains_all(["dog", "cat"]), {2}),
        ("int equal", p("n").equal(2), {1}),
        ("int not equal", p("n").not_equal(2), {0, 2}),
        ("int greater", p("n").greater_than(1), {1, 2}),
        ("int greater or equal", p("n").greater_or_equal(2), {1, 2}),
        ("int less", p("n").less_than(2), {0}),
        ("int less or equal", p("n").less_or_equal(2), {0, 1}),
        ("int contains_any", p("n").contains_any([1, 3]), {0, 2}),
        ("number greater", p("score").greater_than(1.0), {1, 2}),
        ("number less or equal", p("score").less_or_equal(1.5), {0, 1}),
        ("boolean equal", p("flag").equal(True), {0, 2}),
        ("boolean not equal", p("flag").not_equal(True), {1}),
        ("date greater", p("when").greater_than(dt.datetime(2024, 3, 1, tzinfo=dt.UTC)), {1, 2}),
        ("date less", p("when").less_than(dt.datetime(2024, 3, 1, tzinfo=dt.UTC)), {0}),
        ("date equal", p("when").equal(dt.datetime(2024, 6, 1, tzinfo=dt.UTC)), {1}),
        ("uuid equal", p("ref").equal(uuid_lib.UUID(int=2)), {1}),
        ("text[] equal", p("tags").equal("red"), {0, 2}),
        ("text[] contains_any", p("tags").contains_any(["green", "blue"]), {0, 1, 2}),
        ("text[] contains_all", p("tags").contains_all(["red", "blue"]), {2}),
        ("int[] contains_any", p("counts").contains_any([5, 3]), {1, 2}),
        ("int[] equal", p("counts").equal(2), {0, 2}),
        ("and", p("flag").equal(True) & p("n").greater_than(1), {2}),
        ("or", p("n").equal(1) | p("n").equal(2), {0, 1}),
        ("nested and/or", (p("n").equal(1) | p("n").equal(3)) & p("tags").equal("blue"), {2}),
        ("not", Filter.not_(p("n").equal(1)), {1, 2}),
        ("by_id equal", Filter.by_id().equal(generate_uuid5(1)), {1}),
        (
            "by_id contains_any",
            Filter.by_id().contains_any([generate_uuid5(0), generate_uuid5(2)]),
            {0, 2},
        ),
        ("by_id not equal", Filter.by_id().not_equal(generate_uuid5(1)), {0, 2}),
    ]


def test_fetch_objects_by_filters(client: weaviate.WeaviateClient, name: str) -> None:
    collection = make(client, name)
    ingest(collection, [(row, [1.0, float(i), 0.0]) for i, row in enumerate(ROWS)])
    index_of = {uuid_lib.UUID(generate_uuid5(i)): i for i in range(len(ROWS))}
    mismatches = []
    for label, where, expected in filter_cases():
        found = {index_of[o.uuid] for o in collection.query.fetch_objects(filters=where).objects}
        if found != expected:
            mismatches.append(f"{label}: expected {sorted(expected)}, got {sorted(found)}")
    assert mismatches == []


def test_filter_on_unknown_property_is_an_error(client: weaviate.WeaviateClient, name: str) -> None:
    collection = make(client, name)
    ingest(collection, [({"doc_id": "a"}, [1.0, 0.0])])
    with pytest.raises(weaviate.exceptions.WeaviateQueryError) as err:
        collection.query.fetch_objects(filters=Filter.by_property("missing").equal("x"))
    assert "missing" in str(err.value)


def test_delete_many_dry_run_verbose(client: weaviate.WeaviateClient, name: str) -> None:
    collection = make(client, name)
    ingest(collection, [({"doc_id": f"d{i % 3}", "n": i}, [1.0, float(i)]) for i in range(9)])
    where = Filter.by_property("doc_id").equal("d1")

    dry = collection.data.delete_many(where=where, dry_run=True)
    assert dry.matches == 3
    assert len(collection) == 9

    done = collection.data.delete_many(where=where, verbose=True)
    assert (done.matches, done.successful, done.failed) == (3, 3, 0)
    assert done.objects is not None
    assert {o.uuid for o in done.objects} == {uuid_lib.UUID(generate_uuid5(i)) for i in (1, 4, 7)}
    assert all(o.successful for o in done.objects)
    assert len(collection) == 6
    assert collection.data.delete_many(where=where).matches == 0


def test_delete_many_caps_at_ten_thousand(client: weaviate.WeaviateClient, name: str) -> None:
    """One call deletes at most QUERY_MAXIMUM_RESULTS (10,000) objects while reporting every
    match, so deleting a shard's objects loops until nothing matches."""
    collection = client.collections.create(
        name,
        properties=[Property(name="k", data_type=DataType.INT)],
        # A flat index takes 10,050 vectors in about a second; HNSW took 40 s on two cores.
        vector_config=Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.flat()
        ),
    )
    ingest(collection, [({"k": i % 2}, [1.0, float(i % 7)]) for i in range(10_050)])
    where = Filter.by_property("k").greater_or_equal(0)

    dry = collection.data.delete_many(where=where, dry_run=True)
    assert (dry.matches, dry.successful, dry.failed) == (10_050, 10_000, 0)
    assert len(collection) == 10_050

    rounds = []
    while (res := collection.data.delete_many(where=where)).matches:
        rounds.append((res.matches, res.successful, res.failed))
    assert rounds == [(10_050, 10_000, 0), (50, 50, 0)]
    assert len(collection) == 0


def test_near_vector_distance_order_limit_offset(
    client: weaviate.WeaviateClient, name: str
) -> None:
    collection = make(client, name)
    angles = [0.0, 0.2, 0.5, 0.9, 1.4]
    ingest(collection, [({"n": i}, [np.cos(a), np.sin(a), 0.0]) for i, a in enumerate(angles)])
    meta = MetadataQuery(distance=True, certainty=True)

    res = collection.query.near_vector([1.0, 0.0, 0.0], limit=5, return_metadata=meta)
    assert [o.properties["n"] for o in res.objects] == [0, 1, 2, 3, 4]
    expected = [1 - np.cos(a) for a in angles]
    assert [o.metadata.distance for o in res.objects] == pytest.approx(expected, abs=1e-5)
    assert [o.metadata.certainty for o in res.objects] == pytest.approx(
        [1 - d / 2 for d in expected], abs=1e-5
    )

    page = collection.query.near_vector([1.0, 0.0, 0.0], limit=2, offset=2)
    assert [o.properties["n"] for o in page.objects] == [2, 3]

    near = collection.query.near_vector([1.0, 0.0, 0.0], distance=0.15, limit=10)
    assert sorted(o.properties["n"] for o in near.objects) == [0, 1, 2]

    sure = collection.query.near_vector([1.0, 0.0, 0.0], certainty=0.93, limit=10)
    assert sorted(o.properties["n"] for o in sure.objects) == [0, 1, 2]

    filtered = collection.query.near_vector(
        [1.0, 0.0, 0.0], filters=Filter.by_property("n").greater_than(2), limit=1
    )
    assert [o.properties["n"] for o in filtered.objects] == [3]


def test_an_hfresh_collection_is_read_and_searched(
    client: weaviate.WeaviateClient, name: str
) -> None:
    """HFresh, a generally available index type since Weaviate 1.38: the project creates HNSW
    collections, but leaves an existing collection as it is, so it must read and extend an
    HFresh one (its properties, a new metadata property) and search it like any other."""
    collection = client.collections.create(
        name,
        properties=[Property(name="n", data_type=DataType.INT)],
        vector_config=Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hfresh(distance_metric=VectorDistances.COSINE)
        ),
    )
    index = collection.config.get().vector_config["default"].vector_index_config
    assert (index.vector_index_type(), index.distance_metric) == ("hfresh", VectorDistances.COSINE)
    assert ensure_metadata_properties(client, name, [{"lang": "en"}]) == {
        "n": DataType.INT,
        "lang": DataType.TEXT,
    }
    angles = [0.0, 0.2, 0.5, 0.9, 1.4]
    ingest(collection, [({"n": i}, [np.cos(a), np.sin(a), 0.0]) for i, a in enumerate(angles)])
    found = collection.query.near_vector([1.0, 0.0, 0.0], limit=2).objects
    assert [o.properties["n"] for o in found] == [0, 1]


def test_fetch_limit_offset_and_iterator(client: weaviate.WeaviateClient, name: str) -> None:
    collection = make(client, name)
    ingest(collection, [({"n": i}, [1.0, float(i)]) for i in range(25)])
    assert len(collection.query.fetch_objects().objects) == 10  # Weaviate's default limit
    first = collection.query.fetch_objects(limit=7)
    second = collection.query.fetch_objects(limit=7, offset=7)
    assert len(first.objects) == 7 and len(second.objects) == 7
    assert not {o.uuid for o in first.objects} & {o.uuid for o in second.objects}

    seen = [o.uuid for o in collection.iterator(cache_size=10)]
    assert len(seen) == 25 and len(set(seen)) == 25
    assert seen == sorted(seen, key=str)

    descending = collection.query.fetch_objects(sort=Sort.by_property("n", ascending=False))
    assert [o.properties["n"] for o in descending.objects] == list(range(24, 14, -1))

    with_vectors = list(collection.iterator(include_vector=True, cache_size=10))
    by_n = {o.properties["n"]: o.vector["default"] for o in with_vectors}
    assert by_n[4] == pytest.approx([1.0, 4.0])


def test_aggregate_total_count(client: weaviate.WeaviateClient, name: str) -> None:
    collection = make(client, name)
    ingest(collection, [({"n": i, "flag": i % 2 == 0}, [1.0, float(i)]) for i in range(12)])
    assert collection.aggregate.over_all(total_count=True).total_count == 12
    flagged = collection.aggregate.over_all(
        total_count=True, filters=Filter.by_property("flag").equal(True)
    )
    assert flagged.total_count == 6
    both = collection.aggregate.over_all(
        total_count=True,
        filters=Filter.by_property("flag").equal(True) & Filter.by_property("n").less_than(5),
    )
    assert both.total_count == 3
