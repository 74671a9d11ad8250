"""Writing one shard's chunks into Weaviate and proving that they all arrived.

weaviate-client's batching sends objects in the background and reports failures only through
`failed_objects` after the batch closes; objects it never sent successfully are easy to lose. So
a shard counts as ingested only when (1) no object failed, (2) the shard's stale objects (chunks
that a shorter or removed document no longer has) are deleted, and (3) Weaviate's own count of the
shard's objects equals the number of chunks. Ids are deterministic, so any retry overwrites.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import weaviate
from weaviate.classes.query import Filter

from resources.weaviate.schema import VECTOR_NAME

ERRORS_SHOWN = 5


@dataclass(frozen=True)
class IngestObject:
    uuid: str
    properties: Mapping[str, object]
    vector: Sequence[float] | np.ndarray


@dataclass(frozen=True)
class FailedObject:
    uuid: str
    doc_id: str
    message: str


@dataclass
class IngestReport:
    shard: str
    attempted: int = 0
    failed: list[FailedObject] = field(default_factory=list)
    stale_deleted: int = 0
    count_in_weaviate: int | None = None
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return self.attempted - len(self.failed)

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


def shard_filter(shard: str) -> Filter:
    return Filter.by_property("shard").equal(shard)


def write_objects(
    collection: weaviate.collections.Collection,
    report: IngestReport,
    objects: Iterable[IngestObject],
    batch_size: int,
    concurrent_requests: int,
) -> None:
    with collection.batch.fixed_size(
        batch_size=batch_size, concurrent_requests=concurrent_requests
    ) as batch:
        for obj in objects:
            vector = obj.vector.tolist() if isinstance(obj.vector, np.ndarray) else obj.vector
            batch.add_object(
                properties=dict(obj.properties), uuid=obj.uuid, vector={VECTOR_NAME: vector}
            )
            report.attempted += 1
    for error in collection.batch.failed_objects:
        properties = error.object_.properties or {}
        report.failed.append(
            FailedObject(str(error.object_.uuid), str(properties.get("doc_id", "?")), error.message)
        )


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


def count_shard(collection: weaviate.collections.Collection, shard: str) -> int:
    result = collection.aggregate.over_all(filters=shard_filter(shard), total_count=True)
    return int(result.total_count or 0)


def ingest_shard(
    client: weaviate.WeaviateClient,
    collection_name: str,
    shard: str,
    version: str,
    objects: Iterable[IngestObject],
    expected: int,
    batch_size: int = 200,
    concurrent_requests: int = 2,
) -> IngestReport:
    """Write, clean up and verify one shard; raise IngestError unless every object is there.

    `objects` must carry `shard` and `shard_version` properties equal to `shard` and `version`;
    `expected` is the number of distinct objects the shard must end with.
    """
    collection = client.collections.get(collection_name)
    report = IngestReport(shard)
    started = time.perf_counter()
    write_objects(collection, report, objects, batch_size, concurrent_requests)
    if report.failed:
        report.seconds = time.perf_counter() - started
        raise IngestError(report.failure_summary(), report)
    report.stale_deleted = delete_stale(collection, shard, version)
    report.count_in_weaviate = count_shard(collection, shard)
    report.seconds = time.perf_counter() - started
    if report.count_in_weaviate != expected:
        raise IngestError(
            f"shard {shard}: Weaviate holds {report.count_in_weaviate} objects after ingest, "
            f"expected {expected} (one per chunk)",
            report,
        )
    return report
