"""Batch cutting and the retry policy, without a server."""

import numpy as np
import pytest
from weaviate.exceptions import WeaviateBatchError

from resources.weaviate.ingest import (
    IngestObject,
    IngestPolicy,
    _BatchSender,
    cut_batches,
    object_bytes,
)


def _object(i, text_bytes=10):
    return IngestObject(f"id-{i}", {"doc_id": f"d{i}", "text": "x" * text_bytes},
                        np.zeros(384, np.float32))  # fmt: skip


def test_batches_respect_both_the_count_and_the_byte_limit():
    objects = [_object(i, text_bytes=1000 if i % 10 == 0 else 10) for i in range(100)]
    limit = 8 * object_bytes(_object(0, 10))
    batches = list(cut_batches(objects, max_objects=20, max_bytes=limit))
    assert [o.uuid for b in batches for o in b] == [o.uuid for o in objects]
    for batch in batches:
        assert len(batch) <= 20
        assert sum(object_bytes(o) for o in batch) <= limit or len(batch) == 1


def test_an_object_larger_than_the_limit_travels_alone():
    objects = [_object(0), _object(1, text_bytes=50_000), _object(2)]
    assert [len(b) for b in cut_batches(objects, 100, max_bytes=10_000)] == [1, 1, 1]


def test_the_policy_fits_the_servers_message_limit():
    assert IngestPolicy().fitted_to(4 * 1024 * 1024).max_bytes == 2 * 1024 * 1024
    assert IngestPolicy(max_bytes=1000).fitted_to(10**9).max_bytes == 1000
    assert IngestPolicy().fitted_to(None).max_bytes == 8 * 1024 * 1024


class _Result:
    def __init__(self, errors):
        self.errors = errors


class _Error:
    def __init__(self, message):
        self.message = message


class _FlakyCollection:
    """Answers like weaviate-client's `collection.data`, failing as scripted."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []
        self.data = self

    def insert_many(self, objects):
        self.calls.append([o.uuid for o in objects])
        action = self.script.pop(0) if self.script else None
        if callable(action):
            return action(objects)
        if isinstance(action, Exception):
            raise action
        return _Result(action or {})


def _sender(collection, retry_seconds=30.0):
    policy = IngestPolicy(retry_seconds=retry_seconds, first_backoff_seconds=0.01)
    return _BatchSender(collection, policy, sleep=lambda _: None)


def test_transient_failures_are_retried_until_written():
    collection = _FlakyCollection([WeaviateBatchError("Deadline Exceeded"),
                                   {1: _Error("connection reset by peer")}, {}])  # fmt: skip
    sender = _sender(collection)
    assert sender.send([_object(i) for i in range(3)]) == []
    assert collection.calls == [["id-0", "id-1", "id-2"], ["id-0", "id-1", "id-2"], ["id-1"]]
    assert sender.retries == 2


def test_permanent_errors_are_reported_per_object_and_not_retried():
    collection = _FlakyCollection([{0: _Error("invalid text property 'year'")}])
    failed = _sender(collection).send([_object(0), _object(1)])
    assert [(f.uuid, f.doc_id, f.message) for f in failed] == [
        ("id-0", "d0", "invalid text property 'year'")
    ]
    assert len(collection.calls) == 1


def test_a_failure_that_outlasts_the_retry_budget_is_reported():
    collection = _FlakyCollection([WeaviateBatchError("failed to connect: unavailable")] * 1000)
    failed = _sender(collection, retry_seconds=0.0).send([_object(0)])
    assert len(failed) == 1
    assert failed[0].message.startswith("still failing after 0s of retries")
    assert "unavailable" in failed[0].message


@pytest.mark.parametrize("size", [1, 7, 64])
def test_a_batch_the_server_finds_too_large_is_split_until_it_fits(size):
    def refuse_more_than_two(objects):
        if len(objects) > 2:
            raise WeaviateBatchError("Received message larger than max (9999 vs. 100)")
        return _Result({})

    collection = _FlakyCollection([refuse_more_than_two] * 1000)
    assert _sender(collection).send([_object(i) for i in range(size)]) == []
    written = [uuid for call in collection.calls if len(call) <= 2 for uuid in call]
    assert sorted(written) == sorted(f"id-{i}" for i in range(size))
