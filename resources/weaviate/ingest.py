"""Writing one shard's chunks into Weaviate and proving that they all arrived.

A shard counts as ingested only when (1) every object was accepted or explicitly set aside as a
reject, (2) the shard's stale objects (chunks that a shorter or removed document no longer has)
are deleted, and (3) Weaviate's own count of the shard's objects equals what was written. Object
ids are deterministic, so every retry, of a batch or of the whole step, overwrites.

Batches are cut here rather than by weaviate-client's background batcher: its fixed and dynamic
modes cut by object count only, so a batch of long chunks can exceed the server's gRPC message
limit, and they retry only UNAVAILABLE. Each batch is one BatchObjects call, cut by count and by
bytes, retried on transient failures with exponential backoff within a time budget, and split in
half when the server refuses its size. The calls around the batches (the server's message limit,
removing stale objects, counting) go through the same policy (`calls.Calls`), and a cluster that
has lost its quorum ends the shard at once with `calls.ClusterDown`.

The request is built here with weaviate-client's own generated protobuf types and sent over the
client's own gRPC connection, instead of through `collection.data.insert_many`. Measured on a
2-core machine against a server that discards batches (BENCHMARKS.md, "Ingest client
throughput"): `insert_many` reached 4,000-7,000 objects/s per process, and about 77% of the
client's time was its per-object conversion (a protobuf Struct filled key by key through Python,
every vector checked element-wide for being a list before it is packed, argument validation).
Our objects are always scalar properties plus one float32 vector, so each becomes its message in
a few C-level field assignments and one `tobytes()`; the messages are built once and reused by
retries, and their exact encoded size cuts the batches.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import weaviate
from weaviate.classes.config import ConsistencyLevel
from weaviate.classes.query import Filter
from weaviate.exceptions import WeaviateBaseError
from weaviate.proto.v1 import base_pb2, batch_pb2

from resources import settings
from resources.weaviate.calls import Calls, ClusterDown, describe_trouble, is_transient
from resources.weaviate.schema import VECTOR_NAME

log = logging.getLogger(__name__)
ERRORS_SHOWN = 5
_TOO_LARGE_MARKERS = ("larger than max", "message too large", "resource_exhausted")
_GAVE_UP = "still failing after"
_FRAMING_BYTES = 6  # a repeated field's tag and length prefix around each object in the request
# The Struct field a scalar property travels in, as weaviate-client 4.23 puts it (Struct.update:
# ints become doubles, the server converts by the property's declared type).
_VALUE_FIELDS = {str: "string_value", bool: "bool_value", int: "number_value",
                 float: "number_value"}  # fmt: skip
_SINGLE_FP32 = base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32
_CLIENT_RETRIES = 2  # weaviate-client's own UNAVAILABLE retries per call, as in `insert_many`

PropertyValue = str | int | float | bool


@dataclass(frozen=True)
class IngestObject:
    """Scalar properties only: the corpus stage refuses nested metadata (records.py)."""

    uuid: str
    properties: Mapping[str, PropertyValue]
    vector: Sequence[float] | np.ndarray


@dataclass(frozen=True)
class FailedObject:
    uuid: str
    doc_id: str
    message: str

    def as_json(self) -> str:
        return json.dumps({"uuid": self.uuid, "doc_id": self.doc_id, "reason": self.message})


@dataclass(frozen=True)
class IngestPolicy:
    """How batches are cut and retried. `max_bytes` is lowered to fit the server's limit."""

    max_objects: int = settings.weaviate_batch_size.default
    max_bytes: int = 8 * 1024 * 1024
    concurrent_requests: int = settings.weaviate_concurrent_requests.default
    retry_seconds: float = 120.0
    # Replicas that must acknowledge a write, a delete or a count: "ONE", "QUORUM" or "ALL"
    # (None: the server's default, QUORUM).
    consistency: str | None = None
    first_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 15.0

    def fitted_to(self, server_max_message_bytes: int | None) -> IngestPolicy:
        """Half the server's gRPC message limit leaves room for encoding overhead."""
        if not server_max_message_bytes:
            return self
        limit = max(64 * 1024, server_max_message_bytes // 2)
        return IngestPolicy(**{**self.__dict__, "max_bytes": min(self.max_bytes, limit)})

    def calls(self, client: weaviate.WeaviateClient) -> Calls:
        """Calls through `client` retried as this policy retries batches."""
        return Calls(
            client,
            retry_seconds=self.retry_seconds,
            consistency=self.consistency,
            first_backoff_seconds=self.first_backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
        )


@dataclass
class IngestReport:
    shard: str
    attempted: int = 0
    batches: int = 0
    retries: int = 0
    splits: int = 0
    failed: list[FailedObject] = field(default_factory=list)
    stale_deleted: int = 0
    count_in_weaviate: int | None = None
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return self.attempted - len(self.failed)

    @property
    def gave_up(self) -> list[FailedObject]:
        """Objects whose failures were transient but outlasted their retries."""
        return [f for f in self.failed if f.message.startswith(_GAVE_UP)]

    @property
    def transient_only(self) -> bool:
        """True when every failure was a transient one that outlasted its retries."""
        return len(self.gave_up) == len(self.failed)

    @property
    def objects_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def failure_summary(self) -> str:
        lines = [
            f"{len(self.failed)} of {self.attempted} objects of shard {self.shard} were not "
            f"written to Weaviate; first {min(ERRORS_SHOWN, len(self.failed))}:"
        ]
        lines += [
            f"  document {f.doc_id!r} (object {f.uuid}): {f.message}"
            for f in self.failed[:ERRORS_SHOWN]
        ]
        return "\n".join(lines)


class IngestError(RuntimeError):
    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


class Prepared(NamedTuple):
    """An object and its wire message, built once: retries and splits resend the message."""

    obj: IngestObject
    message: batch_pb2.BatchObject


def batch_object(
    obj: IngestObject, collection: str, tenant: str | None = None
) -> batch_pb2.BatchObject:
    """The object as `insert_many` would send it: scalar properties in the Struct, the vector as
    little-endian float32 bytes under the collection's named vector."""
    message = batch_pb2.BatchObject(collection=collection, uuid=obj.uuid, tenant=tenant)
    fields = message.properties.non_ref_properties.fields
    for name, value in obj.properties.items():
        kind = _VALUE_FIELDS.get(type(value))
        if kind is None:
            raise TypeError(
                f"property {name!r} of object {obj.uuid} is a {type(value).__name__}; "
                "objects carry str, int, float and bool properties only"
            )
        setattr(fields[name], kind, value)
    vector = np.asarray(obj.vector, dtype="<f4").tobytes()
    message.vectors.add(name=VECTOR_NAME, vector_bytes=vector, type=_SINGLE_FP32)
    return message


def cut_batches(
    items: Iterable[Prepared], max_objects: int, max_bytes: int
) -> Iterator[list[Prepared]]:
    """Consecutive batches within both limits; an object larger than `max_bytes` goes alone.

    Sizes are the messages' own encoded sizes, so the limit holds exactly, whatever the text.
    """
    batch: list[Prepared] = []
    size = 0
    for item in items:
        item_size = item.message.ByteSize() + _FRAMING_BYTES
        if batch and (len(batch) >= max_objects or size + item_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def _is_too_large(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _TOO_LARGE_MARKERS)


def _failed(obj: IngestObject, message: str) -> FailedObject:
    return FailedObject(obj.uuid, str(obj.properties.get("doc_id", "?")), message)


# One BatchObjects call: the objects' messages in, the server's per-object errors (by position) out.
BatchCall = Callable[[Sequence[batch_pb2.BatchObject]], dict[int, str]]


def grpc_batch_call(collection: weaviate.collections.Collection) -> BatchCall:
    """Sends requests through the client's own connection (its channel, auth headers, timeout,
    UNAVAILABLE retries and error types), with the collection object's consistency level."""
    connection = collection._connection  # weaviate-client is pinned to 4.23 (pyproject.toml)
    level = collection.consistency_level
    consistency = None if level is None else base_pb2.ConsistencyLevel.Value(
        f"CONSISTENCY_LEVEL_{level.value}"
    )  # fmt: skip
    timeout = connection.timeout_config.insert

    def call(messages: Sequence[batch_pb2.BatchObject]) -> dict[int, str]:
        request = batch_pb2.BatchObjectsRequest(objects=messages, consistency_level=consistency)
        return connection.grpc_batch_objects(
            request=request, timeout=timeout, max_retries=_CLIENT_RETRIES
        )

    return call


def _never_lost(detail: str) -> None:
    """Without a cluster to ask, a quorum is never lost."""


class _BatchSender:
    """Sends one batch until every object is written or has a permanent error.

    After a transient failure it calls `stop_if_quorum_lost`, which raises `ClusterDown` when
    the cluster has lost its quorum (`Calls.stop_if_quorum_lost`): that batch and every later
    one raise it at once instead of waiting out their retries.
    """

    def __init__(
        self,
        call: BatchCall,
        policy: IngestPolicy,
        sleep: Callable[[float], None] = time.sleep,
        stop_if_quorum_lost: Callable[[str], object] = _never_lost,
    ) -> None:
        self.call = call
        self.policy = policy
        self.sleep = sleep
        self.stop_if_quorum_lost = stop_if_quorum_lost
        self.retries = 0
        self.splits = 0
        # Why an earlier batch gave up on a transient failure. A server that stayed down for a
        # whole retry budget fails the later batches at once, instead of each waiting out a
        # budget of its own (a dead node would otherwise hold the step for hours).
        self.gave_up: str | None = None
        self.down: str | None = None  # the diagnosis of a lost quorum, once one was seen

    def send(self, batch: list[Prepared]) -> list[FailedObject]:
        if self.down is not None:
            raise ClusterDown(self.down)
        if self.gave_up is not None:
            return [_failed(item.obj, self.gave_up) for item in batch]
        deadline = time.monotonic() + self.policy.retry_seconds
        backoff = self.policy.first_backoff_seconds
        pending = batch
        failed: list[FailedObject] = []
        while pending:
            try:
                errors = self.call([item.message for item in pending])
            except WeaviateBaseError as exc:
                if _is_too_large(str(exc)) and len(pending) > 1:
                    self.splits += 1
                    half = len(pending) // 2
                    return failed + self.send(pending[:half]) + self.send(pending[half:])
                errors = dict.fromkeys(range(len(pending)), f"{type(exc).__name__}: {exc}")
            retry = [pending[i] for i, message in errors.items() if is_transient(message)]
            failed += [_failed(pending[i].obj, m) for i, m in errors.items() if not is_transient(m)]
            if not retry:
                return failed
            reason = next(m for m in errors.values() if is_transient(m))
            self._stop_if_quorum_lost(f"{len(retry)} objects of a batch failed: {reason}")
            if time.monotonic() + backoff > deadline:
                budget = f"{_GAVE_UP} {self.policy.retry_seconds:.0f}s of retries"
                self.gave_up = f"{budget} of an earlier batch, not sent: {reason}"
                return failed + [_failed(item.obj, f"{budget}: {reason}") for item in retry]
            self.retries += 1
            log.warning(f"retrying {len(retry)} objects in {backoff:.1f}s: {reason}")
            self.sleep(backoff)
            backoff = min(backoff * 2, self.policy.max_backoff_seconds)
            pending = retry
        return failed

    def _stop_if_quorum_lost(self, detail: str) -> None:
        try:
            self.stop_if_quorum_lost(detail)
        except ClusterDown as exc:
            self.down = str(exc)
            raise


def vector_length(collection: weaviate.collections.Collection) -> int | None:
    """How many dimensions the vectors `collection` holds have (None while it holds none)."""
    found = collection.query.fetch_objects(limit=1, include_vector=True).objects
    vector = found[0].vector.get(VECTOR_NAME) if found else None
    return len(vector) if vector else None


def _of_length(
    objects: Iterable[IngestObject], length: int | None, report: IngestReport
) -> Iterator[IngestObject]:
    """The objects whose vector has `length` dimensions (the first one's when None); the others
    fail here, unsent. Weaviate's own refusal depends on the layout: with RQ compression and
    synchronous indexing, 1.39 stores a first batch of mixed lengths as it is (and searches
    compare them), and a vector it refuses may leave the object's properties stored."""
    for obj in objects:
        length = length or len(obj.vector)
        if len(obj.vector) == length:
            yield obj
            continue
        report.attempted += 1
        report.failed.append(_failed(obj, (
            f"a vector of {len(obj.vector)} dimensions where the collection's have {length}: "
            "vectors of another model belong in another collection (the reindex job)"
        )))  # fmt: skip


def write_objects(
    collection: weaviate.collections.Collection,
    report: IngestReport,
    objects: Iterable[IngestObject],
    policy: IngestPolicy,
    calls: Calls | None = None,
    length: int | None = None,
) -> None:
    """Send batches with up to `concurrent_requests` in flight, never queueing all of them;
    with `calls`, a lost quorum raises `ClusterDown` (see `_BatchSender`). An object whose
    vector does not have `length` dimensions (default: the first object's) is not sent.

    Messages are built here, in the calling thread, while earlier batches are on the wire.
    """
    stop = calls.stop_if_quorum_lost if calls else _never_lost
    sender = _BatchSender(grpc_batch_call(collection), policy, stop_if_quorum_lost=stop)
    prepared = (
        Prepared(obj, batch_object(obj, collection.name, collection.tenant))
        for obj in _of_length(objects, length, report)
    )
    in_flight: set[Future[list[FailedObject]]] = set()

    def collect(done: set[Future[list[FailedObject]]]) -> None:
        for future in done:
            report.failed += future.result()

    with ThreadPoolExecutor(max_workers=policy.concurrent_requests) as pool:
        for batch in cut_batches(prepared, policy.max_objects, policy.max_bytes):
            if len(in_flight) >= policy.concurrent_requests * 2:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                collect(done)
            in_flight.add(pool.submit(sender.send, batch))
            report.attempted += len(batch)
            report.batches += 1
        collect(wait(in_flight).done)
    report.retries, report.splits = sender.retries, sender.splits


def consistent(
    collection: weaviate.collections.Collection, consistency: str | None
) -> weaviate.collections.Collection:
    """The collection with writes, deletes and reads acknowledged by `consistency` replicas."""
    if consistency is None:
        return collection
    return collection.with_consistency_level(ConsistencyLevel(consistency.upper()))


def shard_filter(shard: str) -> Filter:
    return Filter.by_property("shard").equal(shard)


def delete_stale(collection: weaviate.collections.Collection, shard: str, version: str) -> int:
    """Delete the shard's objects from other versions, looping past the server's per-call cap."""
    stale = shard_filter(shard) & Filter.by_property("shard_version").not_equal(version)
    deleted = 0
    while True:
        result = collection.data.delete_many(where=stale)
        deleted += result.successful
        if result.failed:
            raise RuntimeError(
                f"Weaviate failed to delete {result.failed} stale objects of {shard}"
            )
        if result.matches == 0 or result.successful == 0:
            return deleted


def delete_objects(collection: weaviate.collections.Collection, uuids: Sequence[str]) -> int:
    """Delete objects by id (rejected objects must not linger from an earlier version)."""
    deleted = 0
    for start in range(0, len(uuids), 1000):
        ids = list(uuids[start : start + 1000])
        deleted += collection.data.delete_many(where=Filter.by_id().contains_any(ids)).successful
    return deleted


def count_shard(collection: weaviate.collections.Collection, shard: str) -> int:
    result = collection.aggregate.over_all(filters=shard_filter(shard), total_count=True)
    return int(result.total_count or 0)


def shard_is_current(
    collection: weaviate.collections.Collection, shard: str, version: str, expected: int
) -> bool:
    """The shard already holds exactly `expected` objects, all of this version: nothing to do."""
    if count_shard(collection, shard) != expected:
        return False
    current = shard_filter(shard) & Filter.by_property("shard_version").equal(version)
    result = collection.aggregate.over_all(filters=current, total_count=True)
    return int(result.total_count or 0) == expected


def server_message_limit(client: weaviate.WeaviateClient) -> int | None:
    limit = client.get_meta().get("grpcMaxMessageSize")
    return int(limit) if limit else None


def ingest_shard(
    client: weaviate.WeaviateClient,
    collection_name: str,
    shard: str,
    version: str,
    objects: Iterable[IngestObject],
    expected: int,
    policy: IngestPolicy | None = None,
    allow_rejects: bool = False,
) -> IngestReport:
    """Write, clean up and verify one shard; raise IngestError unless every object is there,
    and `ClusterDown` as soon as a cluster has lost its quorum.

    `objects` must carry `shard` and `shard_version` properties equal to `shard` and `version`;
    `expected` is the number of distinct objects. With `allow_rejects`, objects Weaviate refuses
    are reported in `report.failed` (for the caller's rejects file) instead of failing the shard,
    and the shard must then hold exactly the others.
    """
    policy = policy or IngestPolicy()
    calls = policy.calls(client)
    limit = calls(lambda: server_message_limit(client), "reading the server's message limit")
    policy = policy.fitted_to(limit)
    collection = consistent(client.collections.get(collection_name), policy.consistency)
    report = IngestReport(shard)
    started = time.perf_counter()
    length = calls(lambda: vector_length(collection), "reading the collection's vector length")
    write_objects(collection, report, objects, policy, calls, length)
    # Objects that only outlasted their retries are not refused: they fail the step, to be
    # retried, even where refused objects are set aside.
    if report.failed and (not allow_rejects or report.gave_up):
        report.seconds = time.perf_counter() - started
        summary = report.failure_summary()
        view = calls.stop_if_quorum_lost(summary) if report.gave_up else None
        diagnosis = describe_trouble(view, policy.consistency) if view and view.unreachable else ""
        raise IngestError(f"{diagnosis}\n{summary}" if diagnosis else summary, report)
    report.stale_deleted = calls(
        lambda: delete_stale(collection, shard, version), f"removing {shard}'s stale objects"
    )
    if report.failed:
        refused = [f.uuid for f in report.failed]
        report.stale_deleted += calls(
            lambda: delete_objects(collection, refused), f"removing {shard}'s rejects"
        )
    report.count_in_weaviate = calls(
        lambda: count_shard(collection, shard), f"counting {shard}'s objects"
    )
    report.seconds = time.perf_counter() - started
    if report.count_in_weaviate != expected - len(report.failed):
        raise IngestError(
            f"shard {shard}: Weaviate holds {report.count_in_weaviate} objects after ingest, "
            f"expected {expected - len(report.failed)} (one per chunk"
            f"{f', less {len(report.failed)} rejects' if report.failed else ''})",
            report,
        )
    return report
