"""What a managed server keeps across a restart over the same data directory.

The managed server outlives the runs that write to it and is stopped and started by hand, so an
index must come back as the runs left it: objects, deletes, overwrites, schema changes, and
dropped collections staying dropped. Each test starts a server of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter
from weaviate.util import generate_uuid5

from resources.weaviate.server import LocalServer
from tests.conftest import connect

StartServer = Callable[..., LocalServer]


def _fill(client: weaviate.WeaviateClient) -> None:
    """20 objects, then deletes by filter and by id, an overwrite and an auto-schema property."""
    docs = client.collections.create(
        "Docs",
        properties=[
            Property(name="doc_id", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
            Property(name="n", data_type=DataType.INT),
        ],
        vector_config=Configure.Vectors.self_provided(),
    )
    result = docs.data.insert_many(
        [
            DataObject({"doc_id": f"d{i}", "n": i}, uuid=generate_uuid5(i), vector=[1.0, i, 0.5])
            for i in range(20)
        ]
    )
    assert result.errors == {}
    assert docs.data.delete_many(Filter.by_property("n").less_than(5)).successful == 5
    assert docs.data.delete_by_id(generate_uuid5(10)) is True
    overwrite = docs.data.insert_many(
        [DataObject({"doc_id": "new", "n": 100}, uuid=generate_uuid5(7), vector=[0.0, 1.0, 0.0])]
    )
    assert overwrite.errors == {}
    docs.data.insert(
        {"doc_id": "auto", "n": 5, "extra": "added"}, uuid=generate_uuid5(99), vector=[1, 1, 1]
    )
    client.collections.create("Empty", vector_config=Configure.Vectors.self_provided())


def _snapshot(client: weaviate.WeaviateClient) -> dict[str, object]:
    docs = client.collections.get("Docs")
    objects = {
        str(o.uuid): (o.properties, o.vector.get("default"))
        for o in docs.iterator(include_vector=True)
    }
    schema = docs.config.get()
    return {
        "collections": sorted(client.collections.list_all(simple=True)),
        "properties": sorted((p.name, p.data_type.value) for p in schema.properties),
        "objects": objects,
        "count": docs.aggregate.over_all(total_count=True).total_count,
    }


def test_restart_keeps_collections_objects_deletes_and_overwrites(
    start_server: StartServer,
) -> None:
    server = start_server()
    with connect(server) as client:
        _fill(client)
        before = _snapshot(client)
    assert before["collections"] == ["Docs", "Empty"]
    assert len(before["objects"]) == before["count"] == 20 - 5 - 1 + 1  # type: ignore[arg-type]
    assert ("extra", "text") in before["properties"]  # type: ignore[operator]

    assert server.stop() is True
    assert server.start() is True
    with connect(server) as client:
        assert _snapshot(client) == before
        docs = client.collections.get("Docs")
        overwritten = docs.query.fetch_object_by_id(generate_uuid5(7), include_vector=True)
        assert overwritten is not None
        assert overwritten.properties == {"doc_id": "new", "n": 100, "extra": None}
        assert overwritten.vector["default"] == pytest.approx([0.0, 1.0, 0.0])
        assert docs.query.fetch_object_by_id(generate_uuid5(10)) is None
        nearest = docs.query.near_vector([0.0, 1.0, 0.0], limit=1).objects
        assert [str(o.uuid) for o in nearest] == [generate_uuid5(7)], "the vector index came back"
        # Stopping flushed the writes to disk segments, which node statistics count.
        nodes = client.cluster.nodes(collection="Docs", output="verbose")
        assert [s.object_count for s in nodes[0].shards] == [15]


def test_killed_server_keeps_acknowledged_writes(start_server: StartServer) -> None:
    """A SIGKILL (the OOM killer, a lost node) skips the flush; the write-ahead log replays."""
    server = start_server()
    with connect(server) as client:
        _fill(client)
        before = _snapshot(client)
    server.kill()
    assert server.pid() is None
    assert server.start() is True
    with connect(server) as client:
        assert _snapshot(client) == before


def test_dropped_collection_stays_dropped(start_server: StartServer) -> None:
    server = start_server()
    with connect(server) as client:
        _fill(client)
        client.collections.delete("Docs")
    assert server.stop() is True
    assert server.start() is True
    with connect(server) as client:
        assert client.collections.list_all(simple=True).keys() == {"Empty"}
        assert not client.collections.exists("Docs")
