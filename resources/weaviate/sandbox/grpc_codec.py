"""Conversion between Weaviate's gRPC messages and the store's plain Python values.

Incoming numbers in a protobuf Struct are doubles and arrays travel in typed side fields
(float64 arrays packed as bytes), so decoding reassembles one property dict. Outgoing values
are typed by the schema, because the client picks its Python type from the `Value` oneof it
receives (a `date_value` becomes a datetime, a `uuid_value` a UUID).
"""

from __future__ import annotations

import struct
import uuid as uuid_lib
from typing import Any

import numpy as np
from google.protobuf import struct_pb2
from weaviate.proto.v1 import base_pb2, batch_pb2, properties_pb2

from resources.weaviate.sandbox.errors import SandboxError
from resources.weaviate.sandbox.store import IncomingObject


def _struct_value(value: struct_pb2.Value) -> Any:
    """A protobuf Struct value as plain Python (faster than json_format for big batches)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {k: _struct_value(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_struct_value(v) for v in value.list_value.values]
    return None


def _decode_property_fields(msg: Any) -> dict[str, Any]:
    """Handles both BatchObject.Properties and the nested ObjectPropertiesValue."""
    out = {k: _struct_value(v) for k, v in msg.non_ref_properties.fields.items()}
    for arr in msg.text_array_properties:
        out[arr.prop_name] = list(arr.values)
    for arr in msg.int_array_properties:
        out[arr.prop_name] = list(arr.values)
    for arr in msg.boolean_array_properties:
        out[arr.prop_name] = list(arr.values)
    for arr in msg.number_array_properties:
        if arr.values_bytes:
            count = len(arr.values_bytes) // 8
            out[arr.prop_name] = list(struct.unpack(f"<{count}d", arr.values_bytes))
        else:
            out[arr.prop_name] = list(arr.values)
    for obj in msg.object_properties:
        out[obj.prop_name] = _decode_property_fields(obj.value)
    for arr in msg.object_array_properties:
        out[arr.prop_name] = [_decode_property_fields(v) for v in arr.values]
    for name in msg.empty_list_props:
        out[name] = []
    return out


def decode_batch_object(obj: batch_pb2.BatchObject) -> IncomingObject:
    if obj.tenant:
        raise SandboxError("multi-tenancy (tenant) is not implemented by the Weaviate sandbox")
    props = obj.properties
    if len(props.single_target_ref_props) or len(props.multi_target_ref_props):
        raise SandboxError("cross-references are not implemented by the Weaviate sandbox")
    try:
        uuid = str(uuid_lib.UUID(obj.uuid))
    except ValueError as exc:
        raise SandboxError(f"invalid uuid {obj.uuid!r}") from exc
    vectors: dict[str | None, np.ndarray] = {}
    if obj.vector_bytes:
        vectors[None] = np.frombuffer(obj.vector_bytes, dtype="<f4")
    elif len(obj.vector):
        vectors[None] = np.asarray(obj.vector, dtype=np.float32)
    for vec in obj.vectors:
        if vec.type == base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32:
            raise SandboxError("multi-vectors (ColBERT style) are not implemented by the sandbox")
        vectors[vec.name or None] = np.frombuffer(vec.vector_bytes, dtype="<f4")
    properties = _decode_property_fields(props) if obj.HasField("properties") else {}
    return IncomingObject(uuid, properties, vectors)


def encode_value(prop: dict[str, Any] | None, value: Any) -> properties_pb2.Value:
    """One stored value as the typed `Value` the client deserialises."""
    if value is None:
        return properties_pb2.Value(null_value=0)
    dtype = prop["dataType"][0] if prop else None
    if dtype == "object" and isinstance(value, dict):
        nested = {p["name"]: p for p in prop.get("nestedProperties", [])}
        return properties_pb2.Value(object_value=encode_properties(nested, value))
    if isinstance(value, list):
        return properties_pb2.Value(list_value=_encode_list(prop, dtype, value))
    if dtype == "date":
        return properties_pb2.Value(date_value=value)
    if dtype == "uuid":
        return properties_pb2.Value(uuid_value=value)
    if dtype == "geoCoordinates":
        return properties_pb2.Value(
            geo_value=properties_pb2.GeoCoordinate(
                latitude=value["latitude"], longitude=value["longitude"]
            )
        )
    if isinstance(value, bool):
        return properties_pb2.Value(bool_value=value)
    if dtype == "int" or (dtype is None and isinstance(value, int)):
        return properties_pb2.Value(int_value=int(value))
    if isinstance(value, int | float):
        return properties_pb2.Value(number_value=float(value))
    return properties_pb2.Value(text_value=str(value))


def _encode_list(
    prop: dict[str, Any] | None, dtype: str | None, value: list[Any]
) -> properties_pb2.ListValue:
    if dtype == "object[]":
        nested = {p["name"]: p for p in prop.get("nestedProperties", [])} if prop else {}
        return properties_pb2.ListValue(
            object_values=properties_pb2.ObjectValues(
                values=[encode_properties(nested, v) for v in value]
            )
        )
    if dtype == "int[]":
        return properties_pb2.ListValue(
            int_values=properties_pb2.IntValues(values=np.asarray(value, "<i8").tobytes())
        )
    if dtype == "number[]":
        return properties_pb2.ListValue(
            number_values=properties_pb2.NumberValues(values=np.asarray(value, "<f8").tobytes())
        )
    if dtype == "boolean[]":
        return properties_pb2.ListValue(bool_values=properties_pb2.BoolValues(values=value))
    if dtype == "date[]":
        return properties_pb2.ListValue(date_values=properties_pb2.DateValues(values=value))
    if dtype == "uuid[]":
        return properties_pb2.ListValue(uuid_values=properties_pb2.UuidValues(values=value))
    return properties_pb2.ListValue(
        text_values=properties_pb2.TextValues(values=[str(v) for v in value])
    )


def encode_properties(
    props: dict[str, dict[str, Any]], values: dict[str, Any], names: list[str] | None = None
) -> properties_pb2.Properties:
    selected = values if names is None else {n: values[n] for n in names if n in values}
    return properties_pb2.Properties(
        fields={k: encode_value(props.get(k), v) for k, v in selected.items()}
    )
