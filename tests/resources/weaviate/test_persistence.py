"""Sandbox-only behaviour: restarts over the same data directory, and refusing what it lacks."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, GroupBy
from weaviate.collections import Collection
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
    WeaviateBatchError,
    WeaviateQueryError,
)
from weaviate.util import generate_uuid5

from resources.weaviate.sandbox import SandboxServer
from tests.conftest import WeaviateTarget, connect


def _client(srv: SandboxServer) -> weaviate.WeaviateClient:
    return connect(WeaviateTarget("sandbox", srv.host, srv.http_port, srv.grpc_port))


def _fill(client: weaviate.WeaviateClient) -> None:
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
    docs.data.delete_many(Filter.by_property("n").less_than(5))
    docs.data.delete_by_id(generate_uuid5(10))
    docs.data.insert_many(
        [DataObject({"doc_id": "new", "n": 100}, uuid=generate_uuid5(7), vector=[0.0, 1.0, 0.0])]
    )
    docs.data.insert({"doc_id": "auto", "n": 5, "extra": "added"}, uuid=generate_uuid5(99))
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
    }


def test_restart_keeps_collections_objects_deletes_and_overwrites(tmp_path: Path) -> None:
    with SandboxServer(data_dir=tmp_path) as srv, _client(srv) as client:
        _fill(client)
        before = _snapshot(client)
    assert before["collections"] == ["Docs", "Empty"]
    assert len(before["objects"]) == 20 - 5 - 1 + 1  # type: ignore[arg-type]
    assert ("extra", "text") in before["properties"]  # type: ignore[operator]

    log = tmp_path / "collections" / "Docs" / "objects.log"
    sizes = [log.stat().st_size]
    for _ in range(2):  # the first start compacts the log, the second reads the compacted one
        with SandboxServer(data_dir=tmp_path) as srv, _client(srv) as client:
            sizes.append(log.stat().st_size)
            after = _snapshot(client)
            assert after == before
            overwritten = client.collections.get("Docs").query.fetch_object_by_id(
                generate_uuid5(7), include_vector=True
            )
            assert overwritten is not None and overwritten.properties["doc_id"] == "new"
            assert overwritten.vector["default"] == pytest.approx([0.0, 1.0, 0.0])
    assert sizes[0] > sizes[1] == sizes[2]


def test_torn_log_tail_is_dropped(tmp_path: Path) -> None:
    with SandboxServer(data_dir=tmp_path) as srv, _client(srv) as client:
        _fill(client)
        before = _snapshot(client)
    with (tmp_path / "collections" / "Docs" / "objects.log").open("ab") as log:
        log.write(b"P\x10\x00\x00\x00\x00\x00")  # a record header whose body never arrived
    with SandboxServer(data_dir=tmp_path) as srv, _client(srv) as client:
        assert _snapshot(client) == before
        client.collections.get("Docs").data.insert({"doc_id": "later"}, uuid=generate_uuid5(500))
    with SandboxServer(data_dir=tmp_path) as srv, _client(srv) as client:
        assert client.collections.get("Docs").data.exists(generate_uuid5(500))


def test_dropped_collection_stays_dropped(tmp_path: Path) -> None:
    with SandboxServer(data_dir=tmp_path) as srv, _client(srv) as client:
        _fill(client)
        client.collections.delete("Docs")
    with SandboxServer(data_dir=tmp_path) as srv, _client(srv) as client:
        assert client.collections.list_all(simple=True).keys() == {"Empty"}


@pytest.fixture(scope="module")
def memory_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as srv:
        yield srv


@pytest.fixture
def docs(memory_sandbox: SandboxServer) -> Iterator[Collection]:
    with _client(memory_sandbox) as client:
        collection = client.collections.create(
            "Unsupported", vector_config=Configure.Vectors.self_provided()
        )
        collection.data.insert({"text": "hello world"}, vector=[1.0, 0.0])
        yield collection
        client.collections.delete("Unsupported")


@pytest.mark.parametrize(
    ("query", "feature"),
    [
        (lambda c: c.query.hybrid("hello"), "hybrid queries"),
        (lambda c: c.query.bm25("hello"), "bm25 (keyword) queries"),
        (lambda c: c.query.near_text("hello"), "near_text queries"),
        (lambda c: c.query.near_vector([1.0, 0.0], auto_limit=1), "autocut"),
        (
            lambda c: c.query.near_vector(
                [1.0, 0.0], group_by=GroupBy(prop="text", number_of_groups=1, objects_per_group=1)
            ),
            "group-by queries",
        ),
    ],
)
def test_unsupported_queries_answer_unimplemented(
    docs: Collection, query: Callable[[Collection], object], feature: str
) -> None:
    with pytest.raises(WeaviateQueryError) as err:
        query(docs)
    assert f"the Weaviate sandbox does not implement {feature}" in str(err.value)


def test_unsupported_calls_name_the_feature(
    docs: Collection, memory_sandbox: SandboxServer
) -> None:
    with pytest.raises(WeaviateQueryError) as err:
        docs.aggregate.over_all(group_by="text")
    assert "does not implement grouped aggregations" in str(err.value)

    with pytest.raises(UnexpectedStatusCodeError) as rest_err:
        docs.config.update(description="changed")
    assert rest_err.value.status_code == 501
    assert "does not implement PUT /v1/schema/Unsupported" in rest_err.value.message

    channel = grpc.insecure_channel(f"127.0.0.1:{memory_sandbox.grpc_port}")
    from weaviate.proto.v1 import tenants_pb2, weaviate_pb2_grpc

    with pytest.raises(grpc.RpcError) as rpc_err:
        weaviate_pb2_grpc.WeaviateStub(channel).TenantsGet(
            tenants_pb2.TenantsGetRequest(collection="Unsupported")
        )
    channel.close()
    assert rpc_err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "multi-tenancy" in rpc_err.value.details()


def test_injected_batch_failures(docs: Collection, memory_sandbox: SandboxServer) -> None:
    memory_sandbox.faults.fail_next_batches(1, grpc.StatusCode.RESOURCE_EXHAUSTED)
    with pytest.raises(WeaviateBatchError, match="injected fault: RESOURCE_EXHAUSTED"):
        docs.data.insert_many([DataObject({"text": "a"}, vector=[0.0, 1.0])])
    assert docs.data.insert_many([DataObject({"text": "b"}, vector=[0.0, 1.0])]).errors == {}
    assert len(docs) == 2


def test_serve_forever_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    code = (
        "from resources.weaviate.sandbox import serve_forever; "
        f"serve_forever(0, 0, {str(tmp_path)!r})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        http_port, grpc_port = (int(p) for p in re.findall(r":(\d+)", banner))
        with connect(WeaviateTarget("sandbox", "127.0.0.1", http_port, grpc_port)) as client:
            assert client.is_ready()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(host="0.0.0.0")
