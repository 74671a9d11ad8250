"""The `weaviate.v1.Weaviate` gRPC service, built on the stubs that ship in weaviate-client.

Only the unary calls the client uses against a pre-1.36 server are served: BatchObjects,
BatchDelete, Search and Aggregate. BatchStream (server-side batching), BatchReferences and
TenantsGet answer UNIMPLEMENTED with the feature named.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid as uuid_lib
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from weaviate.proto.v1 import (
    aggregate_pb2,
    base_pb2,
    batch_delete_pb2,
    batch_pb2,
    search_get_pb2,
    weaviate_pb2_grpc,
)

from resources.weaviate.sandbox import queries
from resources.weaviate.sandbox.errors import NotFound, SandboxError, Unsupported
from resources.weaviate.sandbox.faults import Faults
from resources.weaviate.sandbox.grpc_codec import decode_batch_object, encode_properties
from resources.weaviate.sandbox.schema import property_map
from resources.weaviate.sandbox.store import Collection, IncomingObject, Store

T = TypeVar("T")


def _status_of(exc: SandboxError) -> grpc.StatusCode:
    if isinstance(exc, Unsupported):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    return grpc.StatusCode.INVALID_ARGUMENT


def _translating(method: Callable[..., T]) -> Callable[..., T]:
    """Turns the sandbox's errors into gRPC statuses carrying the same message."""

    @functools.wraps(method)
    def wrapper(self: WeaviateService, request: Any, context: grpc.ServicerContext) -> T:
        try:
            return method(self, request, context)
        except SandboxError as exc:
            context.abort(_status_of(exc), str(exc))

    return wrapper


def _unimplemented(feature: str) -> Callable[..., Any]:
    def method(self: WeaviateService, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, Unsupported(feature).args[0])

    return method


class WeaviateService(weaviate_pb2_grpc.WeaviateServicer):
    """Serves one `Store`; `faults` lets tests make batch calls fail on purpose.

    Method names are the RPC names of the generated servicer, hence the CamelCase.
    """

    def __init__(self, store: Store, faults: Faults, discard_batches: bool = False) -> None:
        self.store = store
        self.faults = faults
        # Discard mode accepts every batch object unread, so that an ingest benchmark measures
        # the client side alone; `discarded` counts what was accepted.
        self.discard_batches = discard_batches
        self.discarded = 0
        self._discard_lock = threading.Lock()

    def _collection(self, name: str) -> Collection:
        try:
            return self.store.get(name)
        except NotFound as exc:
            raise NotFound(f"could not find class {name} in schema") from exc

    @_translating
    def BatchObjects(
        self, request: batch_pb2.BatchObjectsRequest, context: grpc.ServicerContext
    ) -> batch_pb2.BatchObjectsReply:
        start = time.perf_counter()
        failure = self.faults.next_batch_failure()
        if self.faults.latency_seconds:
            time.sleep(self.faults.latency_seconds)
        if failure is not None:
            context.abort(*failure)
        if self.discard_batches:
            with self._discard_lock:
                self.discarded += len(request.objects)
            return batch_pb2.BatchObjectsReply(took=time.perf_counter() - start)
        errors: dict[int, str] = {}
        groups: dict[str, list[tuple[int, IncomingObject]]] = {}
        for index, obj in enumerate(request.objects):
            try:
                decoded = decode_batch_object(obj)
            except SandboxError as exc:
                errors[index] = str(exc)
                continue
            rejection = self.faults.rejection(decoded.uuid)
            if rejection is not None:
                errors[index] = rejection
                continue
            groups.setdefault(obj.collection, []).append((index, decoded))
        with self.store.lock:
            for name, items in groups.items():
                try:
                    collection = self.store.get(name)
                except NotFound:
                    for index, _ in items:
                        errors[index] = (
                            f"class {name} not present in schema (the sandbox does not "
                            "create collections automatically)"
                        )
                    continue
                failed = collection.put_many([item for _, item in items])
                for position, message in failed.items():
                    errors[items[position][0]] = message
        return batch_pb2.BatchObjectsReply(
            took=time.perf_counter() - start,
            errors=[
                batch_pb2.BatchObjectsReply.BatchError(index=i, error=e)
                for i, e in sorted(errors.items())
            ],
        )

    @_translating
    def BatchDelete(
        self, request: batch_delete_pb2.BatchDeleteRequest, context: grpc.ServicerContext
    ) -> batch_delete_pb2.BatchDeleteReply:
        start = time.perf_counter()
        if request.tenant:
            raise Unsupported("multi-tenancy (tenant)")
        if not request.HasField("filters"):
            raise SandboxError("batch delete needs filters")
        with self.store.lock:
            collection = self._collection(request.collection)
            matches, deleted = queries.delete_matches(collection, request.filters, request.dry_run)
        done = set(deleted)
        successful = len(matches) if request.dry_run else len(done)
        objects = []
        if request.verbose:
            objects = [
                batch_delete_pb2.BatchDeleteObject(
                    uuid=uuid_lib.UUID(o.uuid).bytes,
                    successful=request.dry_run or o.uuid in done,
                    error=None if request.dry_run or o.uuid in done else "object not found",
                )
                for o in matches
            ]
        return batch_delete_pb2.BatchDeleteReply(
            took=time.perf_counter() - start,
            matches=len(matches),
            successful=successful,
            failed=len(matches) - successful,
            objects=objects,
        )

    @_translating
    def Search(
        self, request: search_get_pb2.SearchRequest, context: grpc.ServicerContext
    ) -> search_get_pb2.SearchReply:
        start = time.perf_counter()
        with self.store.lock:
            collection = self._collection(request.collection)
            hits = queries.search(collection, request)
            results = [self._result(collection, request, hit) for hit in hits]
        return search_get_pb2.SearchReply(took=time.perf_counter() - start, results=results)

    def _result(
        self, collection: Collection, request: search_get_pb2.SearchRequest, hit: queries.Hit
    ) -> search_get_pb2.SearchResult:
        obj = hit.obj
        wanted = request.metadata
        meta = search_get_pb2.MetadataResult(id=obj.uuid, id_as_bytes=uuid_lib.UUID(obj.uuid).bytes)
        if wanted.creation_time_unix:
            meta.creation_time_unix = obj.created_ms
            meta.creation_time_unix_present = True
        if wanted.last_update_time_unix:
            meta.last_update_time_unix = obj.updated_ms
            meta.last_update_time_unix_present = True
        if hit.distance is not None:
            if wanted.distance:
                meta.distance = hit.distance
                meta.distance_present = True
            if wanted.certainty:
                meta.certainty = 1.0 - hit.distance / 2.0
                meta.certainty_present = True
        if wanted.vector or len(wanted.vectors):
            self._add_vectors(collection, obj, list(wanted.vectors), meta)
        # No properties request means all non-reference properties, as in Weaviate.
        names = None
        asked = request.properties
        if request.HasField("properties") and not asked.return_all_nonref_properties:
            names = list(asked.non_ref_properties) + [o.prop_name for o in asked.object_properties]
        props = search_get_pb2.PropertiesResult(
            target_collection=collection.name,
            non_ref_props=encode_properties(property_map(collection.schema), obj.properties, names),
        )
        return search_get_pb2.SearchResult(properties=props, metadata=meta)

    @staticmethod
    def _add_vectors(
        collection: Collection,
        obj: Any,
        names: list[str],
        meta: search_get_pb2.MetadataResult,
    ) -> None:
        if list(collection.spaces) == [""]:
            vec = collection.vector("", obj)
            if vec is not None:
                meta.vector_bytes = vec.astype("<f4").tobytes()
            return
        for name in names or list(collection.spaces):
            vec = collection.vector(collection.space_for(name), obj)
            if vec is not None:
                meta.vectors.append(
                    base_pb2.Vectors(
                        name=name,
                        vector_bytes=vec.astype("<f4").tobytes(),
                        type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32,
                    )
                )

    @_translating
    def Aggregate(
        self, request: aggregate_pb2.AggregateRequest, context: grpc.ServicerContext
    ) -> aggregate_pb2.AggregateReply:
        start = time.perf_counter()
        if len(request.aggregations):
            raise Unsupported("aggregate metrics (only total_count)")
        if request.HasField("group_by"):
            raise Unsupported("grouped aggregations")
        if request.tenant:
            raise Unsupported("multi-tenancy (tenant)")
        for field in ("hybrid", "near_vector", "near_object", "near_text", "near_image"):
            if request.HasField(field):
                raise Unsupported(f"aggregations with {field}")
        with self.store.lock:
            collection = self._collection(request.collection)
            if request.HasField("filters"):
                count = len(queries.select(collection, request.filters))
            else:
                count = len(collection.objects)
        reply = aggregate_pb2.AggregateReply(took=time.perf_counter() - start)
        reply.single_result.objects_count = count
        return reply

    BatchReferences = _unimplemented("batch references (cross-references)")
    TenantsGet = _unimplemented("multi-tenancy (TenantsGet)")
    BatchStream = _unimplemented("server-side batching (BatchStream)")
