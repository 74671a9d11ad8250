"""Evaluation of Weaviate's gRPC `Filters` messages against stored objects.

A filter compiles once per request into a plain predicate. Text follows the property's
tokenization, as Weaviate's inverted index does: with `word` tokenization `equal("Doc-7")`
matches any text holding the tokens "doc" and "7", with `field` only the whole trimmed value.
Array properties match when any element does. Filters on references, geo ranges and property
lengths raise `Unsupported` rather than guessing.
"""

from __future__ import annotations

import re
import uuid as uuid_lib
from collections.abc import Callable
from typing import Any

from weaviate.proto.v1 import base_pb2

from resources.weaviate.sandbox.atoms import normalizer
from resources.weaviate.sandbox.errors import SandboxError, Unsupported
from resources.weaviate.sandbox.schema import property_map
from resources.weaviate.sandbox.store import INDEXED_TYPES, Collection, StoredObject

Predicate = Callable[[StoredObject], bool]
F = base_pb2.Filters

_TIMESTAMPS = {"_creationTimeUnix": "created_ms", "_lastUpdateTimeUnix": "updated_ms"}


def _like_regex(pattern: str) -> re.Pattern[str]:
    escaped = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(escaped, re.DOTALL)


def _path(f: F) -> str:
    if f.HasField("target"):
        kind = f.target.WhichOneof("target")
        if kind != "property":
            raise Unsupported(f"filters on references ({kind})")
        return f.target.property
    if len(f.on) == 1:
        return f.on[0]
    raise Unsupported(f"filters on reference paths {list(f.on)}")


def _raw_value(f: F) -> Any:
    kind = f.WhichOneof("test_value")
    if kind is None:
        raise SandboxError("filter has no value")
    if kind == "value_geo":
        raise Unsupported("geo-range filters")
    value = getattr(f, kind)
    return list(value.values) if kind.endswith("_array") else value


def _getter(path: str) -> Callable[[StoredObject], Any]:
    if path == "_id":
        return lambda obj: obj.uuid
    if path in _TIMESTAMPS:
        attr = _TIMESTAMPS[path]
        return lambda obj: getattr(obj, attr)
    return lambda obj: obj.properties.get(path)


def _leaf(f: F, collection: Collection) -> Predicate:
    path = _path(f)
    op = f.operator
    if path == "_id":
        dtype, prop = "uuid", None
    elif path in _TIMESTAMPS:
        dtype, prop = "timestamp", None
    elif path.startswith("len("):
        raise Unsupported("filters on property length")
    else:
        prop = property_map(collection.schema).get(path)
        if prop is None:
            raise SandboxError(
                f"no such prop with name '{path}' found in class '{collection.name}' "
                "in the schema. Check your schema files for which properties in this class "
                "are available"
            )
        dtype = prop["dataType"][0]
    get = _getter(path)

    if op == F.OPERATOR_IS_NULL:
        want_null = bool(_raw_value(f))
        return lambda obj: (get(obj) in (None, [])) == want_null

    normalize = normalizer(dtype, prop)
    raw = _raw_value(f)
    is_text = dtype.removesuffix("[]") == "text"

    def stored(obj: StoredObject) -> list[Any]:
        value = get(obj)
        return [] if value is None else normalize(value)

    if op in (F.OPERATOR_CONTAINS_ANY, F.OPERATOR_CONTAINS_ALL, F.OPERATOR_CONTAINS_NONE):
        operands = raw if isinstance(raw, list) else [raw]
        wanted = [normalize(v) if is_text else normalize(v)[:1] for v in operands]

        def contained(obj: StoredObject) -> list[bool]:
            have = set(stored(obj))
            return [bool(w) and set(w) <= have for w in wanted]

        if op == F.OPERATOR_CONTAINS_ANY:
            return lambda obj: any(contained(obj))
        if op == F.OPERATOR_CONTAINS_ALL:
            return lambda obj: all(contained(obj))
        return lambda obj: not any(contained(obj))

    if isinstance(raw, list):
        raise SandboxError("an array value needs a contains_any/contains_all/contains_none filter")

    if op in (F.OPERATOR_EQUAL, F.OPERATOR_NOT_EQUAL):
        wanted_atoms = set(normalize(raw))

        def equal(obj: StoredObject) -> bool:
            have = stored(obj)
            if is_text:
                return bool(wanted_atoms) and wanted_atoms <= set(have)
            return any(a in wanted_atoms for a in have)

        if op == F.OPERATOR_EQUAL:
            return equal
        return lambda obj: not equal(obj)

    if op == F.OPERATOR_LIKE:
        if not isinstance(raw, str):
            raise SandboxError("like filters need a text value")
        lowered = is_text and prop is not None and prop["tokenization"] in ("word", "lowercase")
        regex = _like_regex(raw.lower() if lowered else raw)
        if is_text:
            return lambda obj: any(regex.fullmatch(a) for a in stored(obj))
        return lambda obj: any(regex.fullmatch(str(a)) for a in stored(obj))

    compare: dict[int, Callable[[Any, Any], bool]] = {
        F.OPERATOR_GREATER_THAN: lambda a, b: a > b,
        F.OPERATOR_GREATER_THAN_EQUAL: lambda a, b: a >= b,
        F.OPERATOR_LESS_THAN: lambda a, b: a < b,
        F.OPERATOR_LESS_THAN_EQUAL: lambda a, b: a <= b,
    }
    if op in compare:
        operand_atoms = normalize(raw)
        if len(operand_atoms) != 1:
            raise SandboxError(f"range filter on {path!r} needs a single value")
        operand = operand_atoms[0]
        fn = compare[op]
        return lambda obj: any(fn(a, operand) for a in stored(obj))

    if op == F.OPERATOR_WITHIN_GEO_RANGE:
        raise Unsupported("geo-range filters")
    raise Unsupported(f"filter operator {F.Operator.Name(op)}")


def compile_filter(f: F, collection: Collection) -> Predicate:
    """Builds a predicate for one request; raises before any object is touched."""
    op = f.operator
    if op in (F.OPERATOR_AND, F.OPERATOR_OR, F.OPERATOR_NOT):
        parts = [compile_filter(sub, collection) for sub in f.filters]
        if op == F.OPERATOR_AND:
            return lambda obj: all(p(obj) for p in parts)
        if op == F.OPERATOR_OR:
            return lambda obj: any(p(obj) for p in parts)
        if len(parts) != 1:
            raise SandboxError("a not filter takes exactly one operand")
        inner = parts[0]
        return lambda obj: not inner(obj)
    return _leaf(f, collection)


def _leaf_candidates(f: F, collection: Collection) -> set[str] | None:
    path = _path(f)
    if path == "_id":
        values = list(f.value_text_array.values) if f.HasField("value_text_array") else None
        if f.operator == F.OPERATOR_EQUAL and f.HasField("value_text"):
            values = [f.value_text]
        if f.operator not in (F.OPERATOR_EQUAL, F.OPERATOR_CONTAINS_ANY) or values is None:
            return None
        try:
            return {str(uuid_lib.UUID(v)) for v in values}
        except ValueError:
            return set()
    if f.operator not in (F.OPERATOR_EQUAL, F.OPERATOR_CONTAINS_ANY, F.OPERATOR_CONTAINS_ALL):
        return None
    prop = property_map(collection.schema).get(path)
    if prop is None or prop["dataType"][0] not in INDEXED_TYPES:
        return None
    index = collection.equality_index(path)
    normalize = normalizer(prop["dataType"][0], prop)
    raw = _raw_value(f)
    groups = [normalize(v) for v in (raw if isinstance(raw, list) else [raw])]

    def having_all(atoms: list[Any]) -> set[str]:
        sets = sorted((index.get(a, set()) for a in set(atoms)), key=len)
        return set.intersection(*sets) if sets else set()

    if f.operator == F.OPERATOR_CONTAINS_ANY:
        return set().union(*(having_all(g) for g in groups))
    return having_all([a for g in groups for a in g])


def candidate_ids(f: F, collection: Collection) -> set[str] | None:
    """A superset of the UUIDs matching `f`, from `_id` or the equality index; None = scan.

    The predicate still decides; this only narrows which objects it has to look at, which
    turns `doc_id == X` over a million objects from a scan into a lookup.
    """
    if f.operator in (F.OPERATOR_AND, F.OPERATOR_OR):
        found = [candidate_ids(sub, collection) for sub in f.filters]
        known = [c for c in found if c is not None]
        if f.operator == F.OPERATOR_AND:
            return set.intersection(*sorted(known, key=len)) if known else None
        return set().union(*known) if known and len(known) == len(found) else None
    if f.operator == F.OPERATOR_NOT:
        return None
    return _leaf_candidates(f, collection)
