"""Search, count and delete-by-filter semantics over one collection.

These mirror what Weaviate does for the requests the client sends: exact cosine search
(distance = 1 - cosine similarity, certainty = 1 - distance / 2), Weaviate's default limit of
10 and QUERY_MAXIMUM_RESULTS of 10,000, and UUID-ordered pages for `after` (unfiltered
listings use the same order, so a first page without `after` continues correctly). Callers
hold the store lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from weaviate.proto.v1 import base_pb2, base_search_pb2, search_get_pb2

from resources.weaviate.sandbox.errors import SandboxError, Unsupported
from resources.weaviate.sandbox.filters import candidate_ids, compile_filter
from resources.weaviate.sandbox.schema import parse_date, property_map
from resources.weaviate.sandbox.store import Collection, StoredObject

DEFAULT_LIMIT = 10
QUERY_MAXIMUM_RESULTS = 10_000


@dataclass
class Hit:
    obj: StoredObject
    distance: float | None = None


def select(collection: Collection, filters: base_pb2.Filters | None) -> list[StoredObject]:
    """Objects matching `filters`, in write order (Weaviate's doc-id order)."""
    if filters is None:
        return list(collection.objects.values())
    predicate = compile_filter(filters, collection)
    ids = candidate_ids(filters, collection)
    if ids is None:
        return [obj for obj in collection.objects.values() if predicate(obj)]
    pool = [collection.objects[u] for u in ids if u in collection.objects]
    pool.sort(key=lambda o: o.seq)
    return [obj for obj in pool if predicate(obj)]


def _check_supported(request: search_get_pb2.SearchRequest) -> None:
    unsupported = {
        "group_by": "group-by queries",
        "hybrid_search": "hybrid queries",
        "bm25_search": "bm25 (keyword) queries",
        "near_object": "near_object queries",
        "near_text": "near_text queries (no vectorizer modules)",
        "near_image": "near_image queries",
        "near_audio": "near_audio queries",
        "near_video": "near_video queries",
        "near_depth": "near_depth queries",
        "near_thermal": "near_thermal queries",
        "near_imu": "near_imu queries",
        "generative": "generative queries",
        "rerank": "reranking",
        "boost": "boosted queries",
    }
    for field, feature in unsupported.items():
        if request.HasField(field):
            raise Unsupported(feature)
    if request.tenant:
        raise Unsupported("multi-tenancy (tenant)")
    if request.autocut:
        raise Unsupported("autocut")
    if request.HasField("properties") and len(request.properties.ref_properties):
        raise Unsupported("returning cross-references")


def _query_vector(near: base_search_pb2.NearVector) -> tuple[np.ndarray, str | None]:
    targets = list(near.targets.target_vectors) or list(near.target_vectors)
    if len(targets) > 1 or len(near.vector_for_targets) or len(near.vector_per_target):
        raise Unsupported("multi-target vector search")
    target = targets[0] if targets else None
    if near.vector_bytes:
        return np.frombuffer(near.vector_bytes, dtype="<f4"), target
    if len(near.vectors):
        if len(near.vectors) > 1:
            raise Unsupported("multi-target vector search")
        vec = near.vectors[0]
        if vec.type == base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32:
            raise Unsupported("multi-vector (ColBERT style) search")
        return np.frombuffer(vec.vector_bytes, dtype="<f4"), target or vec.name or None
    if len(near.vector):
        return np.asarray(near.vector, dtype=np.float32), target
    raise SandboxError("near_vector needs a vector")


def _near_vector(
    collection: Collection,
    near: base_search_pb2.NearVector,
    filters: base_pb2.Filters | None,
    window: int,
) -> list[Hit]:
    query, target = _query_vector(near)
    distances, slots = collection.cosine_distances(collection.space_for(target), query)
    keep = np.ones(distances.shape[0], dtype=bool)
    if near.HasField("distance"):
        keep &= distances <= near.distance
    if near.HasField("certainty"):
        keep &= (1.0 - distances / 2.0) >= near.certainty
    if filters is not None:
        allowed = {obj.slot for obj in select(collection, filters)}
        keep &= np.fromiter((int(s) in allowed for s in slots), bool, slots.shape[0])
    distances, slots = distances[keep], slots[keep]
    if window < distances.shape[0]:
        part = np.argpartition(distances, window)[:window]
        order = part[np.argsort(distances[part], kind="stable")]
    else:
        order = np.argsort(distances, kind="stable")
    return [Hit(collection.at_slot(int(slots[i])), float(distances[i])) for i in order]


def _sort_key(collection: Collection, path: str) -> Callable[[StoredObject], Any]:
    if path == "_id":
        return lambda o: o.uuid
    if path in ("_creationTimeUnix", "_lastUpdateTimeUnix"):
        attr = "created_ms" if path == "_creationTimeUnix" else "updated_ms"
        return lambda o: getattr(o, attr)
    prop = property_map(collection.schema).get(path)
    if prop is None:
        raise SandboxError(f"no such prop with name '{path}' found in class '{collection.name}'")
    if prop["dataType"][0] == "date":
        return lambda o: None if o.properties.get(path) is None else parse_date(o.properties[path])
    return lambda o: o.properties.get(path)


def _sort(collection: Collection, objs: list[StoredObject], sort_by: list) -> list[StoredObject]:
    """Stable multi-key sort, last key first; objects without the value sort first ascending."""
    for sort in reversed(sort_by):
        if len(sort.path) != 1:
            raise Unsupported("sorting on reference paths")
        key = _sort_key(collection, sort.path[0])
        present = [o for o in objs if key(o) is not None]
        missing = [o for o in objs if key(o) is None]
        present.sort(key=key, reverse=not sort.ascending)
        objs = missing + present if sort.ascending else present + missing
    return objs


def search(collection: Collection, request: search_get_pb2.SearchRequest) -> list[Hit]:
    _check_supported(request)
    limit = request.limit or DEFAULT_LIMIT
    offset = request.offset
    if offset + limit > QUERY_MAXIMUM_RESULTS:
        raise SandboxError(
            f"query maximum results exceeded: offset {offset} + limit {limit} is more than "
            f"QUERY_MAXIMUM_RESULTS {QUERY_MAXIMUM_RESULTS}"
        )
    filters = request.filters if request.HasField("filters") else None
    if request.after:
        if filters is not None or request.HasField("near_vector") or len(request.sort_by):
            raise SandboxError(
                "the cursor api (after) cannot be combined with filters, sorting or vector search"
            )
        if offset:
            raise SandboxError("the cursor api (after) cannot be combined with offset")
        return [Hit(o) for o in collection.ids_after(request.after, limit)]
    if request.HasField("near_vector"):
        if len(request.sort_by):
            raise Unsupported("sorting vector search results")
        return _near_vector(collection, request.near_vector, filters, offset + limit)[offset:]
    if filters is None and not len(request.sort_by):
        return [Hit(o) for o in collection.ids_after("", offset + limit)[offset:]]
    objs = select(collection, filters)
    if len(request.sort_by):
        objs = _sort(collection, objs, list(request.sort_by))
    return [Hit(o) for o in objs[offset : offset + limit]]


def delete_matches(
    collection: Collection, filters: base_pb2.Filters, dry_run: bool
) -> tuple[list[StoredObject], list[str]]:
    """At most QUERY_MAXIMUM_RESULTS matches per call, as Weaviate; callers loop for more."""
    matches = select(collection, filters)[:QUERY_MAXIMUM_RESULTS]
    if dry_run:
        return matches, []
    return matches, collection.delete_many([o.uuid for o in matches])
