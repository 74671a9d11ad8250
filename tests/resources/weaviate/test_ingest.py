"""Ingest accounting against a real Weaviate server.

Refused objects are refused by the server itself (a vector of the wrong length, a property of
the wrong type); faults it cannot produce on demand (a failed or oversized batch call) are
injected into the client's gRPC channel (`grpc_faults.py`); a killed server is really killed.
"""

import json
import threading
import uuid

import grpc
import numpy as np
import pyarrow as pa
import pytest
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter

from resources.weaviate.ingest import (
    IngestError,
    IngestObject,
    IngestPolicy,
    IngestReport,
    count_shard,
    ingest_shard,
    write_objects,
)
from resources.weaviate.objects import build_objects, metadata_samples
from resources.weaviate.schema import VECTOR_NAME, ensure_collection, ensure_metadata_properties
from tests.conftest import connect
from tests.resources.weaviate.grpc_faults import GrpcFaults


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


def _chunk_objects(client, names, n=60):
    """Objects as the index step builds them (`build_objects`), with typed metadata."""
    metadata = [
        {"title": f"Title {i} é€", "year": 1900 + i, "score": 0.5 if i % 2 else 2, "ok": i % 3 == 0}
        for i in range(n)
    ]  # fmt: skip
    chunks = pa.table(
        {
            "uuid": [str(uuid.uuid5(uuid.NAMESPACE_URL, f"same:{i}")) for i in range(n)],
            "doc_id": [f"doc-{i // 4}" for i in range(n)],
            "chunk_index": [i % 4 for i in range(n)],
            "text": [f"chunk {i}: the river\n crossed « an old bridge » " * 30 for i in range(n)],
            "token_count": [200 + i for i in range(n)],
            "metadata": [json.dumps(m, sort_keys=True) for m in metadata],
        }
    )
    vectors = np.random.default_rng(7).normal(size=(n, 384)).astype(np.float32)
    for name in names:
        types = ensure_metadata_properties(client, name, metadata_samples(chunks))
    return list(build_objects(chunks, vectors, "s1", "v1", types)), vectors


def _stored(collection):
    """uuid -> (properties with their Python types, vector) as the client reads them back."""
    return {
        str(o.uuid): (
            {k: (type(v).__name__, v) for k, v in o.properties.items()},
            np.asarray(o.vector[VECTOR_NAME], np.float32),
        )
        for o in collection.query.fetch_objects(limit=1000, include_vector=True).objects
    }


def test_hand_built_requests_store_what_insert_many_stores(client):
    """The same objects written through `write_objects` and through the client's `insert_many`
    are identical on the server: properties with their types, and vectors, object by object."""
    name, reference = client.test_collection, f"{client.test_collection}_ref"
    ensure_collection(client, reference)
    try:
        objects, vectors = _chunk_objects(client, [name, reference])
        report = IngestReport("s1")
        write_objects(client.collections.get(name), report, objects, IngestPolicy(max_objects=16))
        assert (report.failed, report.attempted, report.batches) == ([], 60, 4)
        result = client.collections.get(reference).data.insert_many(
            [DataObject(properties=dict(o.properties), uuid=o.uuid,
                        vector={VECTOR_NAME: o.vector.tolist()}) for o in objects]
        )  # fmt: skip
        assert result.errors == {}
        ours, theirs = (
            _stored(client.collections.get(name)),
            _stored(client.collections.get(reference)),
        )
        assert sorted(ours) == sorted(theirs) == sorted(o.uuid for o in objects)
        for obj, vector in zip(objects, vectors, strict=True):
            (props, stored), (ref_props, ref_stored) = ours[obj.uuid], theirs[obj.uuid]
            assert props == ref_props
            assert props["score"] == ("float", float(obj.properties["score"]))  # 2 became 2.0
            assert props["year"] == ("int", obj.properties["year"])
            assert props["ok"] == ("bool", obj.properties["ok"])
            assert {k: v for k, (_, v) in props.items()} == dict(obj.properties)
            assert np.array_equal(stored, ref_stored) and np.array_equal(stored, vector)
    finally:
        client.collections.delete(reference)


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


def test_stale_removal_meeting_an_unavailable_server_is_retried_like_batches(client):
    name = client.test_collection
    ingest_shard(client, name, "s1", "v1", _objects(40), expected=40)
    # More failures than weaviate-client's own retries of UNAVAILABLE absorb.
    GrpcFaults().install(client).fail_next_deletes(4, grpc.StatusCode.UNAVAILABLE)
    policy = IngestPolicy(first_backoff_seconds=0.05)
    report = ingest_shard(client, name, "s1", "v2", _objects(25, version="v2"), 25, policy)
    assert (report.stale_deleted, report.count_in_weaviate) == (15, 25)


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


def test_a_shard_of_another_models_vectors_is_refused_before_anything_is_written(client):
    """Weaviate's own refusal depends on the layout (with RQ and synchronous indexing, a first
    batch of mixed lengths is stored as it is) and may leave the refused object's properties
    stored; the ingest refuses such objects itself, saying why, and writes none of them."""
    name = client.test_collection
    ingest_shard(client, name, "s1", "v1", _objects(10), expected=10)
    with pytest.raises(IngestError) as caught:
        ingest_shard(client, name, "s2", "v1", _objects(6, shard="s2", dim=5), expected=6)
    assert "6 of 6 objects of shard s2 were not written" in str(caught.value)
    assert "a vector of 5 dimensions where the collection's have 8" in str(caught.value)
    collection = client.collections.get(name)
    assert (count_shard(collection, "s1"), count_shard(collection, "s2")) == (10, 0)


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


def test_a_refused_property_type_is_quoted_from_the_server(client):
    name = client.test_collection
    objects = _objects(6)
    wrong = objects[3]
    objects[3] = IngestObject(
        wrong.uuid, {**wrong.properties, "chunk_index": "three"}, wrong.vector
    )
    with pytest.raises(IngestError) as caught:
        ingest_shard(client, name, "s1", "v1", objects, expected=6)
    report = caught.value.report
    assert [f.doc_id for f in report.failed] == ["doc-3"] and not report.transient_only
    assert "chunk_index" in report.failed[0].message
    assert report.failed[0].message in str(caught.value)


@pytest.mark.parametrize("code", [grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE])
def test_transient_server_failures_are_retried_to_an_exact_count(client, code):
    faults = GrpcFaults().install(client)
    faults.fail_next_batches(2, code)
    policy = IngestPolicy(max_objects=25, first_backoff_seconds=0.05)
    name = client.test_collection
    report = ingest_shard(client, name, "s1", "v1", _objects(100), expected=100, policy=policy)
    assert report.count_in_weaviate == 100 and not report.failed
    assert faults.batch_calls == 4 + 2
    # The client retries UNAVAILABLE itself; the other codes are retried by the ingest.
    assert report.retries == (0 if code == grpc.StatusCode.UNAVAILABLE else 2)


def test_a_persistent_server_failure_fails_the_shard_with_the_reason(client):
    GrpcFaults().install(client).fail_next_batches(10_000, grpc.StatusCode.DEADLINE_EXCEEDED)
    policy = IngestPolicy(max_objects=50, retry_seconds=0.5, first_backoff_seconds=0.1)
    with pytest.raises(IngestError) as caught:
        ingest_shard(client, client.test_collection, "s1", "v1", _objects(60), expected=60,
                     policy=policy)  # fmt: skip
    assert caught.value.report.transient_only
    assert len(caught.value.report.failed) == 60
    assert "still failing after 0s of retries" in str(caught.value)
    assert "injected DEADLINE_EXCEEDED" in str(caught.value)
    assert count_shard(client.collections.get(client.test_collection), "s1") == 0


def test_with_quarantine_objects_that_only_timed_out_still_fail_the_shard(client):
    """A busy or leaderless cluster is no reason to set objects aside: the step fails, to be
    retried, and nothing goes to the rejects."""
    GrpcFaults().install(client).fail_next_batches(10_000, grpc.StatusCode.DEADLINE_EXCEEDED)
    policy = IngestPolicy(max_objects=50, retry_seconds=0.2, first_backoff_seconds=0.1)
    with pytest.raises(IngestError) as caught:
        ingest_shard(client, client.test_collection, "s1", "v1", _objects(10), expected=10,
                     policy=policy, allow_rejects=True)  # fmt: skip
    assert caught.value.report.transient_only and len(caught.value.report.gave_up) == 10
    assert str(caught.value).startswith("10 of 10 objects of shard s1 were not written")


def test_a_batch_the_server_finds_too_large_is_split_until_it_fits(client):
    faults = GrpcFaults().install(client)
    faults.max_objects = 30
    policy = IngestPolicy(max_objects=100)
    report = ingest_shard(client, client.test_collection, "s1", "v1", _objects(200),
                          expected=200, policy=policy)  # fmt: skip
    assert report.count_in_weaviate == 200 and not report.failed
    assert report.batches == 2 and report.splits == 2 * (1 + 2)  # 100 -> 50 -> 25 each


def _ingest_in_background(client, name, objects, policy) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def ingest():
        try:
            outcome["report"] = ingest_shard(
                client, name, "s1", "v1", objects, expected=len(objects), policy=policy
            )
        except Exception as exc:  # the test asserts on it
            outcome["error"] = exc

    worker = threading.Thread(target=ingest)
    worker.start()
    return worker, outcome


def test_a_server_restart_in_the_middle_of_an_ingest_loses_nothing(start_server):
    server = start_server()
    client = connect(server)
    name = f"Restart_{uuid.uuid4().hex[:8]}"
    ensure_collection(client, name)
    faults = GrpcFaults().install(client)
    faults.hold_at = 10  # the tenth batch waits while the server restarts under it
    policy = IngestPolicy(max_objects=10, retry_seconds=120, first_backoff_seconds=0.2)
    worker, outcome = _ingest_in_background(client, name, _objects(300), policy)
    try:
        assert faults.held.wait(60), "the ingest never reached its tenth batch"
        server.stop()
        server.start()  # same ports, same data directory
        faults.release.set()
        worker.join(timeout=300)
        assert "error" not in outcome, outcome.get("error")
        report = outcome["report"]
        assert report.count_in_weaviate == 300 and not report.failed
    finally:
        faults.release.set()
        client.close()


def test_a_killed_server_fails_the_shard_loudly_and_counts_nothing_unwritten(start_server):
    """kill -9 of the only node: the ingest retries for its budget, then fails with every
    unacknowledged object named as failed; what it counted as written is really there after
    the server comes back, and a rerun ends at the exact count."""
    server = start_server()
    client = connect(server)
    name = f"Killed_{uuid.uuid4().hex[:8]}"
    ensure_collection(client, name)
    faults = GrpcFaults().install(client)
    faults.hold_at = 6
    objects = _objects(200)
    policy = IngestPolicy(max_objects=10, concurrent_requests=1, retry_seconds=3,
                          first_backoff_seconds=0.2)  # fmt: skip
    worker, outcome = _ingest_in_background(client, name, objects, policy)
    try:
        assert faults.held.wait(60), "the ingest never reached its sixth batch"
        server.kill()
        faults.release.set()
        worker.join(timeout=300)
        error = outcome.get("error")
        assert isinstance(error, IngestError), outcome
        report = error.report
        assert report.transient_only and report.failed
        assert "still failing after 3s of retries" in str(error)
        assert report.written == 50  # the five batches acknowledged before the kill
    finally:
        faults.release.set()
        client.close()
    server.start()
    with connect(server) as again:
        collection = again.collections.get(name)
        assert count_shard(collection, "s1") >= report.written
        rerun = ingest_shard(again, name, "s1", "v1", objects, expected=200)
        assert rerun.count_in_weaviate == 200 and not rerun.failed
