"""In-memory collections with optional persistence to a data directory.

Objects live in a dict in write order (an overwrite moves to the end, as the new doc id
Weaviate assigns it does); their vectors live in one float32 matrix per named vector, a row
per object slot, so exact nearest neighbour search is one matrix-vector product over a
million rows. Freed slots are reused. The gRPC and HTTP servers are threaded, so callers hold
`Store.lock` around every operation on a collection.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resources.weaviate.sandbox import atoms
from resources.weaviate.sandbox import schema as schema_mod
from resources.weaviate.sandbox.errors import AlreadyExists, NotFound, SandboxError
from resources.weaviate.sandbox.oplog import LoggedObject, OpLog, encode_delete, encode_put, replay

# Types the equality index covers: their atoms are hashable and compared by equality.
INDEXED_TYPES = {"text", "int", "number", "boolean", "uuid", "date", "text[]", "int[]", "uuid[]"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class StoredObject:
    uuid: str
    properties: dict[str, Any]
    created_ms: int
    updated_ms: int
    slot: int
    seq: int  # write order, Weaviate's doc-id order for listings


@dataclass
class IncomingObject:
    """An object as a protocol layer decoded it, before validation.

    `vectors` maps a vector name to its values; the key None means "the unnamed vector", which
    Weaviate routes to the legacy class vector or to the only named vector.
    """

    uuid: str
    properties: dict[str, Any]
    vectors: dict[str | None, np.ndarray]


class VectorSpace:
    """The rows of one named vector; a row is valid where `present` is set."""

    def __init__(self) -> None:
        self.dim: int | None = None
        self.data = np.zeros((0, 0), dtype=np.float32)
        self.norms = np.zeros(0, dtype=np.float32)
        self.present = np.zeros(0, dtype=bool)

    def _grow(self, slots: int) -> None:
        capacity = self.present.shape[0]
        if slots <= capacity:
            return
        new_cap = max(slots, capacity * 2, 1024)
        data = np.zeros((new_cap, self.dim or 0), dtype=np.float32)
        data[:capacity] = self.data
        self.data = data
        self.norms = np.concatenate([self.norms, np.zeros(new_cap - capacity, np.float32)])
        self.present = np.concatenate([self.present, np.zeros(new_cap - capacity, bool)])

    def set_many(self, slots: list[int], vectors: list[np.ndarray]) -> None:
        """Writes a batch of rows at once: one fancy-index copy instead of one per object."""
        block = np.stack(vectors).astype(np.float32, copy=False)
        if self.dim is None:
            self.dim = int(block.shape[1])
            self.data = np.zeros((self.present.shape[0], self.dim), dtype=np.float32)
        self._grow(max(slots) + 1)
        index = np.asarray(slots, dtype=np.int64)
        self.data[index] = block
        self.norms[index] = np.linalg.norm(block, axis=1)
        self.present[index] = True

    def clear(self, slot: int) -> None:
        if slot < self.present.shape[0]:
            self.present[slot] = False

    def get(self, slot: int) -> np.ndarray | None:
        if slot < self.present.shape[0] and self.present[slot]:
            return self.data[slot]
        return None


class Collection:
    """One class: schema, objects, vectors and its log. Callers hold the store lock."""

    def __init__(self, schema: dict[str, Any], directory: Path | None) -> None:
        self.schema = schema
        self.name: str = schema["class"]
        self.objects: dict[str, StoredObject] = {}
        self.spaces: dict[str, VectorSpace] = {
            n: VectorSpace() for n in schema_mod.vector_names(schema)
        }
        self._free_slots: list[int] = []
        self._slot_ids: list[str | None] = []
        self._next_slot = 0
        self._sorted_ids: list[str] | None = None
        self._seq = 0
        # property -> atom -> uuids; built on the first equality filter on the property.
        self._indexes: dict[str, dict[Any, set[str]]] = {}
        self._dir = directory
        self._log: OpLog | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._write_schema()
            self._load()
            self._log = OpLog(directory / "objects.log")

    # -- persistence -------------------------------------------------------------------------
    def _write_schema(self) -> None:
        assert self._dir is not None
        tmp = self._dir / "schema.json.tmp"
        tmp.write_text(json.dumps(self.schema))
        os.replace(tmp, self._dir / "schema.json")

    def _load(self) -> None:
        assert self._dir is not None
        path = self._dir / "objects.log"
        records = 0
        for kind, payload in replay(path):
            if kind == "P":
                pending = self._pending()
                for logged in payload:
                    records += 1
                    self._place(logged.uuid, logged.properties, pending, logged.vectors, logged)
                self._write_vectors(pending)
            else:
                for uuid in payload:
                    records += 1
                    self._remove(uuid)
        # Rewriting costs a pass over every live object, so only when a quarter is dead weight.
        if records - len(self.objects) > len(self.objects) // 4:
            log = OpLog(path)
            log.rewrite(self._logged(obj) for obj in self.objects.values())
            log.close()

    def _logged(self, obj: StoredObject) -> LoggedObject:
        vectors = {}
        for name, space in self.spaces.items():
            vec = space.get(obj.slot)
            if vec is not None:
                vectors[name] = vec
        return LoggedObject(obj.uuid, obj.properties, obj.created_ms, obj.updated_ms, vectors)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def drop_files(self) -> None:
        self.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # -- mutation ----------------------------------------------------------------------------
    def _place(
        self,
        uuid: str,
        properties: dict[str, Any],
        pending: dict[str, dict[int, np.ndarray]],
        vectors: dict[str, np.ndarray],
        times: LoggedObject | None = None,
    ) -> StoredObject:
        """Puts one object; its vectors wait in `pending` for `_write_vectors`."""
        old = self.objects.get(uuid)
        stamp = now_ms()
        if old is not None:
            slot = old.slot
            for space in self.spaces.values():
                space.clear(slot)
            created = old.created_ms
        else:
            if self._free_slots:
                slot = self._free_slots.pop()
                self._slot_ids[slot] = uuid
            else:
                slot = self._next_slot
                self._next_slot += 1
                self._slot_ids.append(uuid)
            created = stamp
            self._sorted_ids = None
        if times is not None:
            created, stamp = times.created_ms, times.updated_ms
        self._seq += 1
        obj = StoredObject(uuid, properties, created, stamp, slot, self._seq)
        if old is not None:
            self._unindex(old)
            del self.objects[uuid]  # re-inserted last, like the new doc id Weaviate assigns
        self.objects[uuid] = obj
        self._index(obj)
        for name, by_slot in pending.items():
            by_slot.pop(slot, None)
            if name in vectors:
                by_slot[slot] = vectors[name]
        return obj

    def _write_vectors(self, pending: dict[str, dict[int, np.ndarray]]) -> None:
        for name, by_slot in pending.items():
            if by_slot:
                self.spaces[name].set_many(list(by_slot), list(by_slot.values()))

    def _pending(self) -> dict[str, dict[int, np.ndarray]]:
        return {name: {} for name in self.spaces}

    def _remove(self, uuid: str) -> bool:
        obj = self.objects.pop(uuid, None)
        if obj is None:
            return False
        self._unindex(obj)
        for space in self.spaces.values():
            space.clear(obj.slot)
        self._free_slots.append(obj.slot)
        self._slot_ids[obj.slot] = None
        self._sorted_ids = None
        return True

    def _resolve_vectors(
        self, vectors: dict[str | None, np.ndarray], batch_dims: dict[str, int]
    ) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, vec in vectors.items():
            if name is None or (name == "default" and name not in self.spaces):
                if len(self.spaces) != 1:
                    raise SandboxError(
                        f"collection {self.name} has several named vectors "
                        f"{sorted(self.spaces)}: name the vector"
                    )
                name = next(iter(self.spaces))
            if name not in self.spaces:
                raise SandboxError(f"collection {self.name} has no vector named {name!r}")
            if vec.ndim != 1:
                raise SandboxError("multi-vectors (ColBERT style) are not implemented")
            expected = self.spaces[name].dim or batch_dims.get(name)
            if expected is not None and vec.shape[0] != expected:
                raise SandboxError(
                    f"new node has a vector with length {vec.shape[0]}. "
                    f"Existing nodes have vectors with length {expected}"
                )
            batch_dims[name] = vec.shape[0]
            out[name] = vec.astype(np.float32, copy=False)
        return out

    def _coerce_properties(self, properties: dict[str, Any]) -> dict[str, Any]:
        props = schema_mod.property_map(self.schema)
        out: dict[str, Any] = {}
        added = []
        for key, value in properties.items():
            prop = props.get(key)
            if prop is None:
                if value is None or value == []:
                    continue
                prop = schema_mod.infer_property(key, value)
                added.append(prop)
                props[key] = prop
            out[key] = schema_mod.coerce_value(self.name, prop, value)
        if added:
            self.schema["properties"].extend(added)
            if self._dir is not None:
                self._write_schema()
        return out

    def add_property(self, body: dict[str, Any]) -> dict[str, Any]:
        prop = schema_mod.complete_property(body, f"class {self.name!r}")
        if prop["name"].lower() in {p["name"].lower() for p in self.schema["properties"]}:
            raise SandboxError(f"property {prop['name']!r} already exists in class {self.name}")
        self.schema["properties"].append(prop)
        if self._dir is not None:
            self._write_schema()
        return prop

    def put_many(self, incoming: list[IncomingObject]) -> dict[int, str]:
        """Stores the valid objects; returns {index: error} for the rejected ones."""
        errors: dict[int, str] = {}
        accepted: list[StoredObject] = []
        batch_dims: dict[str, int] = {}
        pending = self._pending()
        for index, item in enumerate(incoming):
            try:
                vectors = self._resolve_vectors(item.vectors, batch_dims)
                properties = self._coerce_properties(item.properties)
            except SandboxError as exc:
                errors[index] = str(exc)
                continue
            accepted.append(self._place(item.uuid, properties, pending, vectors))
        self._write_vectors(pending)
        if accepted and self._log is not None:
            self._log.append(encode_put(self._logged(obj) for obj in accepted))
        return errors

    def delete_many(self, uuids: list[str]) -> list[str]:
        deleted = [u for u in uuids if self._remove(u)]
        if deleted and self._log is not None:
            self._log.append(encode_delete(deleted))
        return deleted

    # -- equality index ----------------------------------------------------------------------
    def _atoms(self, name: str, obj: StoredObject) -> set[Any]:
        value = obj.properties.get(name)
        if value is None:
            return set()
        prop = schema_mod.property_map(self.schema)[name]
        return set(atoms.normalizer(prop["dataType"][0], prop)(value))

    def _index(self, obj: StoredObject) -> None:
        for name, index in self._indexes.items():
            for atom in self._atoms(name, obj):
                index.setdefault(atom, set()).add(obj.uuid)

    def _unindex(self, obj: StoredObject) -> None:
        for name, index in self._indexes.items():
            for atom in self._atoms(name, obj):
                holders = index.get(atom)
                if holders is not None:
                    holders.discard(obj.uuid)
                    if not holders:
                        del index[atom]

    def equality_index(self, name: str) -> dict[Any, set[str]]:
        """Atom -> UUIDs for one property, kept current by every later write."""
        index = self._indexes.get(name)
        if index is None:
            index = {}
            for obj in self.objects.values():
                for atom in self._atoms(name, obj):
                    index.setdefault(atom, set()).add(obj.uuid)
            self._indexes[name] = index
        return index

    # -- reads -------------------------------------------------------------------------------
    def ids_after(self, after: str, limit: int) -> list[StoredObject]:
        """Cursor listing in UUID order, the order Weaviate's `after` pagination uses."""
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self.objects)
        start = bisect_right(self._sorted_ids, after) if after else 0
        return [self.objects[u] for u in self._sorted_ids[start : start + limit]]

    def vector(self, name: str, obj: StoredObject) -> np.ndarray | None:
        return self.spaces[name].get(obj.slot)

    def space_for(self, name: str | None) -> str:
        if not name:
            if len(self.spaces) != 1:
                raise SandboxError(
                    f"collection {self.name} has several named vectors: pass target_vector"
                )
            return next(iter(self.spaces))
        if name not in self.spaces:
            raise SandboxError(f"collection {self.name} has no vector named {name!r}")
        return name

    def cosine_distances(self, name: str, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distances (1 - cosine similarity) of every slot holding a vector, and those slots."""
        space = self.spaces[name]
        if space.dim is None:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if query.shape[0] != space.dim:
            raise SandboxError(
                f"vector search: the query vector has length {query.shape[0]}, "
                f"but the collection's vectors have length {space.dim}"
            )
        used = self._next_slot
        norms = space.norms[:used] * float(np.linalg.norm(query))
        with np.errstate(divide="ignore", invalid="ignore"):
            sims = space.data[:used] @ query.astype(np.float32) / norms
        slots = np.flatnonzero(space.present[:used])
        distances = 1.0 - np.nan_to_num(sims[slots], nan=0.0, posinf=0.0, neginf=0.0)
        return distances.astype(np.float32), slots

    def at_slot(self, slot: int) -> StoredObject:
        uuid = self._slot_ids[slot]
        assert uuid is not None, "a slot with a vector always has an owner"
        return self.objects[uuid]


class Store:
    """All collections, the lock that serialises access, and where they persist."""

    def __init__(self, data_dir: str | os.PathLike[str] | None) -> None:
        self.lock = threading.RLock()
        self._root = Path(data_dir) / "collections" if data_dir is not None else None
        self._aliases_file = Path(data_dir) / "aliases.json" if data_dir is not None else None
        self.collections: dict[str, Collection] = {}
        # alias -> class name; every name lookup goes through here, as in Weaviate 1.32+.
        self.aliases: dict[str, str] = {}
        if self._root is not None:
            self._root.mkdir(parents=True, exist_ok=True)
            for path in sorted(self._root.iterdir()):
                schema_file = path / "schema.json"
                if schema_file.exists():
                    schema = json.loads(schema_file.read_text())
                    self.collections[schema["class"]] = Collection(schema, path)
        if self._aliases_file is not None and self._aliases_file.exists():
            self.aliases = json.loads(self._aliases_file.read_text())

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        schema = schema_mod.complete_class(body)
        with self.lock:
            if any(n.lower() == schema["class"].lower() for n in self.collections):
                raise AlreadyExists(f"class name {schema['class']} already exists")
            if schema["class"] in self.aliases:
                raise AlreadyExists(f"class name {schema['class']} is already used by an alias")
            directory = self._root / schema["class"] if self._root is not None else None
            self.collections[schema["class"]] = Collection(schema, directory)
            return schema

    def get(self, name: str) -> Collection:
        """The collection of that name, or the one an alias of that name points to."""
        key = schema_mod.class_name(name)
        collection = self.collections.get(self.aliases.get(key, key))
        if collection is None:
            raise NotFound(f"collection {name} not found")
        return collection

    def drop(self, name: str) -> None:
        """Drops a class by its own name (never through an alias), and the aliases to it."""
        with self.lock:
            collection = self.collections.pop(schema_mod.class_name(name), None)
            if collection is not None:
                collection.drop_files()
                self._set_aliases({a: c for a, c in self.aliases.items() if c != collection.name})

    # -- aliases -----------------------------------------------------------------------------
    def _set_aliases(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases
        if self._aliases_file is not None:
            tmp = self._aliases_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(aliases, sort_keys=True))
            os.replace(tmp, self._aliases_file)

    def create_alias(self, alias: str, class_name: str) -> tuple[str, str]:
        alias, target = schema_mod.class_name(alias), schema_mod.class_name(class_name)
        with self.lock:
            if not alias:
                raise SandboxError("alias name must not be empty")
            if alias in self.aliases:
                raise AlreadyExists(f"alias {alias} already exists")
            if any(n.lower() == alias.lower() for n in self.collections):
                raise AlreadyExists(f"alias {alias} clashes with the class of that name")
            if target not in self.collections:
                raise NotFound(f"class {target} not found")
            self._set_aliases({**self.aliases, alias: target})
            return alias, target

    def replace_alias(self, alias: str, class_name: str) -> tuple[str, str]:
        """Points an existing alias at another class in one step: readers never see neither."""
        alias, target = schema_mod.class_name(alias), schema_mod.class_name(class_name)
        with self.lock:
            if alias not in self.aliases:
                raise NotFound(f"alias {alias} not found")
            if target not in self.collections:
                raise NotFound(f"class {target} not found")
            self._set_aliases({**self.aliases, alias: target})
            return alias, target

    def delete_alias(self, alias: str) -> None:
        alias = schema_mod.class_name(alias)
        with self.lock:
            if alias not in self.aliases:
                raise NotFound(f"alias {alias} not found")
            self._set_aliases({a: c for a, c in self.aliases.items() if a != alias})

    def close(self) -> None:
        with self.lock:
            for collection in self.collections.values():
                collection.close()
