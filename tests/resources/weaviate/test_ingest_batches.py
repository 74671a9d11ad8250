"""Wire messages, batch cutting and the retry policy, without a server."""

import numpy as np
import pytest
from weaviate.classes.config import ConsistencyLevel
from weaviate.collections.batch.grpc_batch import _BatchGRPC
from weaviate.collections.classes.batch import _BatchObject
from weaviate.exceptions import WeaviateBatchError
from weaviate.proto.v1 import base_pb2, batch_pb2
from weaviate.util import _ServerVersion

from resources.weaviate.ingest import (
    IngestObject,
    IngestPolicy,
    Prepared,
    _BatchSender,
    batch_object,
    cut_batches,
    grpc_batch_call,
)
from resources.weaviate.schema import VECTOR_NAME


def _object(i, text_bytes=10):
    return IngestObject(f"id-{i}", {"doc_id": f"d{i}", "text": "x" * text_bytes},
                        np.zeros(384, np.float32))  # fmt: skip


def _prepared(i, text_bytes=10):
    obj = _object(i, text_bytes)
    return Prepared(obj, batch_object(obj, "Chunks"))


def _as_insert_many_sends(obj, collection, tenant=None):
    """The message weaviate-client 4.23's `insert_many` builds for the same object."""
    vector = obj.vector.tolist() if isinstance(obj.vector, np.ndarray) else list(obj.vector)
    batch = _BatchGRPC(_ServerVersion.from_string("1.30.0"), None, None)
    return batch.grpc_object(
        _BatchObject(collection=collection, vector={VECTOR_NAME: vector}, uuid=obj.uuid,
                     properties=dict(obj.properties), tenant=tenant, references=None, index=0)
    )  # fmt: skip


@pytest.mark.parametrize("tenant", [None, "tenant-a"])
@pytest.mark.parametrize("as_array", [True, False])
def test_a_message_is_the_one_the_client_would_send(tenant, as_array):
    vector = np.random.default_rng(3).normal(size=384).astype(np.float32)
    obj = IngestObject(
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        {"doc_id": "doc-7", "chunk_index": 3, "text": "é€ text\n", "token_count": 254,
         "year": 1950, "score": 0.25, "big": 2**40, "ok": True, "off": False, "empty": ""},
        vector if as_array else [float(x) for x in vector],
    )  # fmt: skip
    message = batch_object(obj, "Chunks", tenant)
    assert message == _as_insert_many_sends(obj, "Chunks", tenant)
    assert message.SerializeToString(deterministic=True) == _as_insert_many_sends(
        obj, "Chunks", tenant
    ).SerializeToString(deterministic=True)
    fields = message.properties.non_ref_properties.fields
    assert fields["chunk_index"].number_value == 3.0
    assert fields["ok"].WhichOneof("kind") == "bool_value" and fields["ok"].bool_value is True
    assert fields["text"].string_value == "é€ text\n"
    (packed,) = message.vectors
    assert packed.name == VECTOR_NAME
    assert packed.type == base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32
    assert np.array_equal(np.frombuffer(packed.vector_bytes, "<f4"), vector)


@pytest.mark.parametrize("value", [None, [1, 2], {"a": 1}, np.int64(3)])
def test_a_property_that_is_not_a_scalar_is_refused_by_name(value):
    obj = IngestObject("id-1", {"doc_id": "d1", "odd": value}, np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="property 'odd' of object id-1"):
        batch_object(obj, "Chunks")


def test_batches_respect_both_the_count_and_the_byte_limit():
    items = [_prepared(i, text_bytes=1000 if i % 10 == 0 else 10) for i in range(100)]
    limit = 8 * items[1].message.ByteSize()
    batches = list(cut_batches(items, max_objects=20, max_bytes=limit))
    assert [p.obj.uuid for b in batches for p in b] == [p.obj.uuid for p in items]
    for batch in batches:
        assert len(batch) <= 20
        request = batch_pb2.BatchObjectsRequest(objects=[p.message for p in batch])
        assert request.ByteSize() <= limit or len(batch) == 1


def test_an_object_larger_than_the_limit_travels_alone():
    items = [_prepared(0), _prepared(1, text_bytes=50_000), _prepared(2)]
    assert [len(b) for b in cut_batches(items, 100, max_bytes=10_000)] == [1, 1, 1]


def test_the_policy_fits_the_servers_message_limit():
    assert IngestPolicy().fitted_to(4 * 1024 * 1024).max_bytes == 2 * 1024 * 1024
    assert IngestPolicy(max_bytes=1000).fitted_to(10**9).max_bytes == 1000
    assert IngestPolicy().fitted_to(None).max_bytes == 8 * 1024 * 1024


class _FlakyServer:
    """Answers one BatchObjects call like `grpc_batch_call`, failing as scripted."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def __call__(self, messages):
        self.calls.append([m.uuid for m in messages])
        action = self.script.pop(0) if self.script else None
        if callable(action):
            return action(messages)
        if isinstance(action, Exception):
            raise action
        return dict(action or {})


def _sender(server, retry_seconds=30.0):
    policy = IngestPolicy(retry_seconds=retry_seconds, first_backoff_seconds=0.01)
    return _BatchSender(server, policy, sleep=lambda _: None)


def test_transient_failures_are_retried_until_written():
    server = _FlakyServer([WeaviateBatchError("Deadline Exceeded"),
                           {1: "connection reset by peer"}, {}])  # fmt: skip
    sender = _sender(server)
    assert sender.send([_prepared(i) for i in range(3)]) == []
    assert server.calls == [["id-0", "id-1", "id-2"], ["id-0", "id-1", "id-2"], ["id-1"]]
    assert sender.retries == 2


def test_a_request_cut_off_when_a_cluster_node_dies_is_retried():
    # What a three-node cluster answered to a batch in flight when a node was SIGKILLed.
    cut = WeaviateBatchError(
        "Query call with protocol GRPC batch failed with message Received RST_STREAM with "
        "error code 8."
    )
    server = _FlakyServer([cut, {}])
    assert _sender(server).send([_prepared(0), _prepared(1)]) == []
    assert len(server.calls) == 2


def test_permanent_errors_are_reported_per_object_and_not_retried():
    server = _FlakyServer([{0: "invalid text property 'year'"}])
    failed = _sender(server).send([_prepared(0), _prepared(1)])
    assert [(f.uuid, f.doc_id, f.message) for f in failed] == [
        ("id-0", "d0", "invalid text property 'year'")
    ]
    assert len(server.calls) == 1


def test_when_every_object_fails_each_keeps_its_own_reason():
    server = _FlakyServer([{0: "vector lengths don't match", 1: "no such property 'x'"}])
    failed = _sender(server).send([_prepared(0), _prepared(1)])
    assert [(f.doc_id, f.message) for f in failed] == [
        ("d0", "vector lengths don't match"),
        ("d1", "no such property 'x'"),
    ]


def test_a_failure_that_outlasts_the_retry_budget_is_reported():
    server = _FlakyServer([WeaviateBatchError("failed to connect: unavailable")] * 1000)
    failed = _sender(server, retry_seconds=0.0).send([_prepared(0)])
    assert [(f.uuid, f.doc_id) for f in failed] == [("id-0", "d0")]
    assert failed[0].message.startswith("still failing after 0s of retries")
    assert "unavailable" in failed[0].message


@pytest.mark.parametrize("size", [1, 7, 64])
def test_a_batch_the_server_finds_too_large_is_split_until_it_fits(size):
    def refuse_more_than_two(messages):
        if len(messages) > 2:
            raise WeaviateBatchError("Received message larger than max (9999 vs. 100)")
        return {}

    server = _FlakyServer([refuse_more_than_two] * 1000)
    assert _sender(server).send([_prepared(i) for i in range(size)]) == []
    written = [uuid for call in server.calls if len(call) <= 2 for uuid in call]
    assert sorted(written) == sorted(f"id-{i}" for i in range(size))


class _Connection:
    """Stands in for weaviate-client's gRPC connection; records what it is asked to send."""

    timeout_config = type("Timeouts", (), {"insert": 90})()

    def __init__(self):
        self.sent = []

    def grpc_batch_objects(self, request, timeout, max_retries):
        self.sent.append((request, timeout, max_retries))
        return {1: "no such property 'x'"}


@pytest.mark.parametrize(
    ("level", "expected"),
    [(None, None), (ConsistencyLevel.QUORUM, base_pb2.ConsistencyLevel.CONSISTENCY_LEVEL_QUORUM)],
)
def test_requests_carry_the_collections_consistency_level_and_the_replys_errors(level, expected):
    connection = _Connection()
    collection = type("Collection", (), {"_connection": connection, "consistency_level": level})
    messages = [_prepared(i).message for i in range(3)]
    assert grpc_batch_call(collection)(messages) == {1: "no such property 'x'"}
    ((request, timeout, max_retries),) = connection.sent
    assert list(request.objects) == messages and (timeout, max_retries) == (90, 2)
    if expected is None:
        assert not request.HasField("consistency_level")
    else:
        assert request.consistency_level == expected
