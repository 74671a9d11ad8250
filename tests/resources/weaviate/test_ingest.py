"""Ingest accounting against a Weaviate-protocol server (the sandbox, or a real one)."""

import uuid

import grpc
import numpy as np
import pytest
from weaviate.classes.query import Filter

from resources.weaviate.ingest import (
    IngestError,
    IngestObject,
    IngestPolicy,
    count_shard,
    ingest_shard,
)
from resources.weaviate.schema import ensure_collection, ensure_metadata_properties
from tests.conftest import WeaviateTarget, connect


@pytest.fixture
def client(weaviate_target):
    client = connect(weaviate_target)
    name = f"Ingest_{uuid.uuid4().hex[:8]}"
    ensure_collection(client, name)
    client.test_collection = name
    yield client
    client.collections.delete(name)
    client.close()


def _objects(n, shard="s1", version="v1", dim=8, seed=0, start=0):
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return [
        IngestObject(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{shard}:{i}")),
            {
                "doc_id": f"doc-{i}",
                "chunk_index": 0,
                "text": f"chunk {i}",
                "token_count": 2,
                "shard": shard,
                "shard_version": version,
            },
            vectors[i - start],
        )  # fmt: skip
        for i in range(start, start + n)
    ]


def test_a_shard_lands_exactly_and_a_rerun_changes_nothing(client):
    name = client.test_collection
    policy = IngestPolicy(max_objects=50)
    report = ingest_shard(client, name, "s1", "v1", _objects(120), expected=120, policy=policy)
    assert (report.attempted, report.written, report.stale_deleted) == (120, 120, 0)
    assert report.batches == 3
    assert report.count_in_weaviate == 120
    again = ingest_shard(client, name, "s1", "v1", _objects(120), expected=120, policy=policy)
    assert again.count_in_weaviate == 120
    assert count_shard(client.collections.get(name), "s1") == 120


def test_stale_chunks_of_the_shard_are_removed_and_other_shards_kept(client):
    name = client.test_collection
    ingest_shard(client, name, "s1", "v1", _objects(40), expected=40)
    ingest_shard(client, name, "s2", "v1", _objects(10, shard="s2"), expected=10)
    shorter = _objects(25, version="v2")
    report = ingest_shard(client, name, "s1", "v2", shorter, expected=25)
    assert report.stale_deleted == 15
    collection = client.collections.get(name)
    assert count_shard(collection, "s1") == 25
    assert count_shard(collection, "s2") == 10
    kept = collection.query.fetch_objects(
        filters=Filter.by_property("shard").equal("s1"), limit=100
    )
    assert {o.properties["shard_version"] for o in kept.objects} == {"v2"}


def test_rejected_objects_fail_the_shard_and_are_named(client):
    name = client.test_collection
    good = _objects(10)
    bad = _objects(2, dim=5, start=10)  # a vector of the wrong dimension
    with pytest.raises(IngestError) as caught:
        ingest_shard(client, name, "s1", "v1", good + bad, expected=12)
    report = caught.value.report
    assert report.attempted == 12 and len(report.failed) == 2
    assert {f.doc_id for f in report.failed} == {"doc-10", "doc-11"}
    assert "2 of 12 objects of shard s1 were not written" in str(caught.value)
    assert "doc-10" in str(caught.value)


def test_metadata_properties_are_added_with_types(client):
    name = client.test_collection
    types = ensure_metadata_properties(
        client, name, [{"year": 2001, "title": "x", "source-url": "u"}, {"year": 2.5, "ok": True}]
    )
    assert types["year"].value == "number"
    assert types["title"].value == "text"
    assert types["source_url"].value == "text"
    assert types["ok"].value == "boolean"


def test_with_quarantine_rejected_objects_are_reported_and_the_rest_lands(client):
    name = client.test_collection
    objects = _objects(10) + _objects(2, dim=5, start=10)
    report = ingest_shard(client, name, "s1", "v1", objects, expected=12, allow_rejects=True)
    assert sorted(f.doc_id for f in report.failed) == ["doc-10", "doc-11"]
    assert report.count_in_weaviate == 10


@pytest.mark.parametrize("code", [grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE])
def test_transient_server_failures_are_retried_to_an_exact_count(sandbox, code):
    target = WeaviateTarget("sandbox", sandbox.host, sandbox.http_port, sandbox.grpc_port)
    client = connect(target)
    name = f"Flaky_{uuid.uuid4().hex[:8]}"
    ensure_collection(client, name)
    try:
        sandbox.faults.fail_next_batches(2, code)
        policy = IngestPolicy(max_objects=25, first_backoff_seconds=0.05)
        report = ingest_shard(client, name, "s1", "v1", _objects(100), expected=100, policy=policy)
        assert report.count_in_weaviate == 100 and not report.failed
        assert (
            report.retries >= 1 or code == grpc.StatusCode.UNAVAILABLE
        )  # the client retries these
    finally:
        sandbox.faults.clear()
        client.collections.delete(name)
        client.close()
