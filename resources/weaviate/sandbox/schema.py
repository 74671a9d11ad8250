"""Collection schemas: Weaviate's defaults, validation and value coercion.

The client parses the class JSON strictly (`collection.config.get()` indexes keys such as
`vectorIndexConfig.efConstruction` directly), so a created class is completed with the same
defaults a real server fills in. Values are checked against the declared data types the way
Weaviate does, and properties it has not seen are added by inference, as Weaviate's default
auto-schema does.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid as uuid_lib
from typing import Any

from resources.weaviate.sandbox.errors import SandboxError, Unsupported

_CLASS_NAME = re.compile(r"^[A-Za-z][_0-9A-Za-z]*$")
_PROPERTY_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")

PRIMITIVE_TYPES = {"text", "int", "number", "boolean", "date", "uuid"}
ARRAY_TYPES = {f"{t}[]" for t in PRIMITIVE_TYPES}
OTHER_TYPES = {"object", "object[]", "geoCoordinates", "phoneNumber", "blob"}
TOKENIZATIONS = {"word", "lowercase", "whitespace", "field", "trigram", "gse", "kagome_kr"}


def class_name(name: str) -> str:
    """Weaviate stores class names with an upper-case first letter; lookups do the same."""
    return name[:1].upper() + name[1:]


def _hnsw_defaults() -> dict[str, Any]:
    return {
        "skip": False,
        "cleanupIntervalSeconds": 300,
        "maxConnections": 32,
        "efConstruction": 128,
        "ef": -1,
        "dynamicEfMin": 100,
        "dynamicEfMax": 500,
        "dynamicEfFactor": 8,
        "vectorCacheMaxObjects": 1000000000000,
        "flatSearchCutoff": 40000,
        "distance": "cosine",
        "pq": {
            "enabled": False,
            "bitCompression": False,
            "segments": 0,
            "centroids": 256,
            "trainingLimit": 100000,
            "encoder": {"type": "kmeans", "distribution": "log-normal"},
        },
        "bq": {"enabled": False},
        "sq": {"enabled": False, "trainingLimit": 100000, "rescoreLimit": 20},
        "rq": {"enabled": False, "bits": 8, "rescoreLimit": 20},
        "filterStrategy": "sweeping",
        "multivector": {"enabled": False, "aggregation": "maxSim"},
    }


def _flat_defaults() -> dict[str, Any]:
    return {
        "distance": "cosine",
        "vectorCacheMaxObjects": 1000000000000,
        "pq": {"enabled": False},
        "bq": {"enabled": False, "rescoreLimit": -1, "cache": False},
        "sq": {"enabled": False},
    }


def _vector_index(index_type: str | None, config: dict[str, Any] | None) -> tuple[str, dict]:
    """Completes one vector index; only the distance matters to the sandbox's exact search."""
    index_type = index_type or "hnsw"
    if index_type not in ("hnsw", "flat"):
        raise Unsupported(f"vector index type {index_type!r}")
    merged = _hnsw_defaults() if index_type == "hnsw" else _flat_defaults()
    for key, value in (config or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    if merged["distance"] != "cosine":
        raise Unsupported(f"vector distance {merged['distance']!r} (only cosine)")
    return index_type, merged


def complete_property(prop: dict[str, Any], where: str) -> dict[str, Any]:
    name = prop.get("name")
    if not isinstance(name, str) or not _PROPERTY_NAME.match(name):
        raise SandboxError(f"{where}: invalid property name {name!r}")
    data_type = prop.get("dataType")
    if not isinstance(data_type, list) or len(data_type) != 1:
        raise SandboxError(f"{where}: property {name!r} needs exactly one dataType")
    dtype = data_type[0]
    if dtype not in PRIMITIVE_TYPES | ARRAY_TYPES | OTHER_TYPES:
        if dtype[:1].isupper():
            raise Unsupported(f"cross-reference properties ({name!r} -> {dtype})")
        raise SandboxError(f"{where}: property {name!r} has unknown dataType {dtype!r}")
    out = {
        k: v for k, v in prop.items() if k not in ("skip_vectorization", "vectorize_property_name")
    }
    is_text = dtype in ("text", "text[]")
    if is_text:
        tokenization = out.setdefault("tokenization", "word")
        if tokenization not in TOKENIZATIONS:
            raise SandboxError(f"{where}: property {name!r} has unknown tokenization")
    elif out.get("tokenization"):
        raise SandboxError(
            f"{where}: tokenization is not allowed for data type {dtype!r} of property {name!r}"
        )
    out.setdefault("indexFilterable", True)
    out.setdefault("indexSearchable", is_text)
    out.setdefault("indexRangeFilters", False)
    if dtype in ("object", "object[]"):
        nested = out.get("nestedProperties")
        if not nested:
            raise SandboxError(f"{where}: object property {name!r} needs nestedProperties")
        out["nestedProperties"] = [complete_property(p, where) for p in nested]
    return out


def complete_class(body: dict[str, Any]) -> dict[str, Any]:
    """Validates a create-class body and returns it with Weaviate's server-side defaults."""
    name = body.get("class")
    if not isinstance(name, str) or not _CLASS_NAME.match(name):
        raise SandboxError(f"invalid class name {name!r}")
    schema = copy.deepcopy(body)
    schema["class"] = class_name(name)
    where = f"class {schema['class']!r}"
    if schema.get("multiTenancyConfig", {}).get("enabled"):
        raise Unsupported("multi-tenancy")
    if schema.get("moduleConfig"):
        raise Unsupported("modules (moduleConfig)")
    if schema.get("vectorizer", "none") != "none":
        raise Unsupported(f"vectorizer {schema['vectorizer']!r}")

    if "vectorConfig" in schema:
        for vec_name, vec in schema["vectorConfig"].items():
            vectorizer = vec.get("vectorizer") or {"none": {}}
            if list(vectorizer) != ["none"]:
                raise Unsupported(f"vectorizer {list(vectorizer)} on vector {vec_name!r}")
            vec["vectorizer"] = vectorizer
            vec["vectorIndexType"], vec["vectorIndexConfig"] = _vector_index(
                vec.get("vectorIndexType"), vec.get("vectorIndexConfig")
            )
        schema.pop("vectorIndexType", None)
        schema.pop("vectorIndexConfig", None)
        schema.pop("vectorizer", None)
    else:
        schema["vectorizer"] = "none"
        schema["vectorIndexType"], schema["vectorIndexConfig"] = _vector_index(
            schema.get("vectorIndexType"), schema.get("vectorIndexConfig")
        )

    properties = [complete_property(p, where) for p in schema.get("properties") or []]
    seen: set[str] = set()
    for prop in properties:
        if prop["name"].lower() in seen:
            raise SandboxError(f"{where}: duplicate property name {prop['name']!r}")
        seen.add(prop["name"].lower())
    schema["properties"] = properties

    inverted = schema.get("invertedIndexConfig") or {}
    schema["invertedIndexConfig"] = {
        "bm25": {"b": 0.75, "k1": 1.2, **inverted.get("bm25", {})},
        "cleanupIntervalSeconds": inverted.get("cleanupIntervalSeconds", 60),
        "stopwords": {
            "preset": "en",
            "additions": None,
            "removals": None,
            **inverted.get("stopwords", {}),
        },
        "indexTimestamps": inverted.get("indexTimestamps", False),
        "indexNullState": inverted.get("indexNullState", False),
        "indexPropertyLength": inverted.get("indexPropertyLength", False),
        "usingBlockMaxWAND": inverted.get("usingBlockMaxWAND", True),
    }
    schema["multiTenancyConfig"] = {
        "enabled": False,
        "autoTenantCreation": False,
        "autoTenantActivation": False,
    }
    replication = schema.get("replicationConfig") or {}
    if replication.get("factor", 1) != 1:
        raise Unsupported("replication factor other than 1")
    schema["replicationConfig"] = {
        "factor": 1,
        "asyncEnabled": False,
        "deletionStrategy": replication.get("deletionStrategy", "NoAutomatedResolution"),
    }
    schema["shardingConfig"] = {
        "virtualPerPhysical": 128,
        "desiredCount": 1,
        "actualCount": 1,
        "desiredVirtualCount": 128,
        "actualVirtualCount": 128,
        "key": "_id",
        "strategy": "hash",
        "function": "murmur3",
    }
    return schema


def vector_names(schema: dict[str, Any]) -> list[str]:
    """Named vectors of a class; the empty name stands for the legacy class-level vector."""
    return list(schema["vectorConfig"]) if "vectorConfig" in schema else [""]


def property_map(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in schema["properties"]}


def parse_date(value: str) -> dt.datetime:
    """RFC 3339 as Weaviate accepts it; naive times are read as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _is_date(value: str) -> bool:
    if len(value) < 10 or value[4:5] != "-":
        return False
    try:
        parse_date(value)
    except ValueError:
        return False
    return True


def _is_uuid(value: str) -> bool:
    try:
        uuid_lib.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def infer_property(name: str, value: Any) -> dict[str, Any]:
    """The dataType Weaviate's auto-schema would give a value it sees for the first time."""
    if isinstance(value, list):
        element = infer_property(name, value[0])
        if element["dataType"][0] in ("object", "geoCoordinates", "phoneNumber"):
            dtype = "object[]"
        else:
            dtype = element["dataType"][0] + "[]"
        prop = {"name": name, "dataType": [dtype]}
        if dtype == "object[]":
            prop["nestedProperties"] = _infer_nested(value[0])
    elif isinstance(value, bool):
        prop = {"name": name, "dataType": ["boolean"]}
    elif isinstance(value, int):
        # Only integer arrays arrive as ints: Struct numbers are always doubles.
        prop = {"name": name, "dataType": ["int"]}
    elif isinstance(value, float):
        prop = {"name": name, "dataType": ["number"]}
    elif isinstance(value, str):
        dtype = "date" if _is_date(value) else "uuid" if _is_uuid(value) else "text"
        prop = {"name": name, "dataType": [dtype]}
    elif isinstance(value, dict):
        prop = {"name": name, "dataType": ["object"], "nestedProperties": _infer_nested(value)}
    else:
        raise SandboxError(f"cannot infer a data type for property {name!r}")
    return complete_property(prop, "auto-schema")


def _infer_nested(value: dict[str, Any]) -> list[dict[str, Any]]:
    return [infer_property(k, v) for k, v in value.items() if v is not None and v != []]


def coerce_value(cls: str, prop: dict[str, Any], value: Any) -> Any:
    """Checks one value against its property and returns the form the store keeps.

    Numbers arrive as doubles inside a protobuf Struct, so an `int` property accepts a double
    with no fraction, as Weaviate does. Dates and UUIDs stay strings (validated) so that they
    go back to the client exactly as it sent them.
    """
    dtype = prop["dataType"][0]
    name = prop["name"]
    if value is None:
        return None
    if dtype.endswith("[]") and dtype != "object[]":
        if not isinstance(value, list):
            raise SandboxError(
                f"invalid {dtype} property '{name}' on class '{cls}': not an array, "
                f"but {type(value).__name__}"
            )
        element = {**prop, "dataType": [dtype[:-2]]}
        return [coerce_value(cls, element, v) for v in value]
    if dtype == "text":
        if not isinstance(value, str):
            raise SandboxError(
                f"invalid text property '{name}' on class '{cls}': not a string, "
                f"but {type(value).__name__}"
            )
        return value
    if dtype == "int":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise SandboxError(
                f"invalid integer property '{name}' on class '{cls}': requires integer, "
                f"the given value is {value!r}"
            )
        return int(value)
    if dtype == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SandboxError(
                f"invalid number property '{name}' on class '{cls}': requires a number, "
                f"the given value is {value!r}"
            )
        return float(value)
    if dtype == "boolean":
        if not isinstance(value, bool):
            raise SandboxError(
                f"invalid boolean property '{name}' on class '{cls}': requires a bool, "
                f"the given value is {value!r}"
            )
        return value
    if dtype == "date":
        if not isinstance(value, str) or not _is_date(value):
            raise SandboxError(
                f"invalid date property '{name}' on class '{cls}': requires a string with "
                f"a RFC3339 formatted date, but the given value is {value!r}"
            )
        return value
    if dtype == "uuid":
        if not isinstance(value, str) or not _is_uuid(value):
            raise SandboxError(
                f"invalid uuid property '{name}' on class '{cls}': requires a string with "
                f"a UUID, but the given value is {value!r}"
            )
        return str(uuid_lib.UUID(value))
    if dtype in ("object", "object[]"):
        if dtype == "object[]":
            if not isinstance(value, list):
                raise SandboxError(f"invalid object[] property '{name}' on class '{cls}'")
            return [coerce_value(cls, {**prop, "dataType": ["object"]}, v) for v in value]
        if not isinstance(value, dict):
            raise SandboxError(f"invalid object property '{name}' on class '{cls}'")
        nested = {p["name"]: p for p in prop["nestedProperties"]}
        out = {}
        for key, inner in value.items():
            if key not in nested:
                raise SandboxError(
                    f"invalid object property '{name}' on class '{cls}': "
                    f"no such nested property {key!r}"
                )
            out[key] = coerce_value(cls, nested[key], inner)
        return out
    if dtype == "geoCoordinates":
        if not isinstance(value, dict) or not {"latitude", "longitude"} <= set(value):
            raise SandboxError(f"invalid geoCoordinates property '{name}' on class '{cls}'")
        return {"latitude": float(value["latitude"]), "longitude": float(value["longitude"])}
    raise Unsupported(f"{dtype} properties")
