"""Weaviate's REST API, the part weaviate-client calls outside of gRPC.

Status codes and error bodies (`{"error": [{"message": ...}]}`) follow Weaviate, because the
client decides success by status code: HEAD on an object answers 204/404, creating an
existing class 422, a missing class 404. Any other route answers 501 naming the route.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid as uuid_lib
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from resources.weaviate.sandbox import schema as schema_mod
from resources.weaviate.sandbox.errors import AlreadyExists, NotFound, SandboxError, Unsupported
from resources.weaviate.sandbox.store import Collection, IncomingObject, Store, StoredObject

# Below 1.36 the client batches through the unary BatchObjects call (1.36 switched it to the
# BatchStream protocol) and needs nothing the sandbox lacks; 1.27 is the oldest it accepts.
SERVER_VERSION = "1.35.2"
GRPC_MAX_MESSAGE_SIZE = 104858000
NODE_NAME = "sandbox-node-1"

Reply = tuple[int, Any]


def _error(status: int, message: str) -> Reply:
    return status, {"error": [{"message": message}]}


def shard_name(class_name: str) -> str:
    """Stable per class, like the random-looking names Weaviate gives its shards."""
    return hashlib.sha1(class_name.encode()).hexdigest()[:12]


class RestApi:
    """Routes requests to the store; independent of the HTTP server so it is easy to test."""

    def __init__(self, store: Store, hostname: str) -> None:
        self.store = store
        self.hostname = hostname
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
            ("GET", re.compile(r"/v1/meta"), self.meta),
            ("GET", re.compile(r"/v1/\.well-known/(ready|live)"), lambda _: (200, None)),
            ("GET", re.compile(r"/v1/schema"), self.list_classes),
            ("POST", re.compile(r"/v1/schema"), self.create_class),
            ("GET", re.compile(r"/v1/schema/([^/]+)"), self.get_class),
            ("DELETE", re.compile(r"/v1/schema/([^/]+)"), self.delete_class),
            ("POST", re.compile(r"/v1/schema/([^/]+)/properties"), self.add_property),
            ("GET", re.compile(r"/v1/schema/([^/]+)/shards"), self.shards),
            ("GET", re.compile(r"/v1/nodes(?:/([^/]+))?"), self.nodes),
            ("POST", re.compile(r"/v1/objects"), self.create_object),
            ("GET", re.compile(r"/v1/objects/([^/]+)/([^/]+)"), self.get_object),
            ("HEAD", re.compile(r"/v1/objects/([^/]+)/([^/]+)"), self.head_object),
            ("DELETE", re.compile(r"/v1/objects/([^/]+)/([^/]+)"), self.delete_object),
            ("PUT", re.compile(r"/v1/objects/([^/]+)/([^/]+)"), self.replace_object),
            ("PATCH", re.compile(r"/v1/objects/([^/]+)/([^/]+)"), self.update_object),
            ("GET", re.compile(r"/v1/aliases"), self.list_aliases),
            ("POST", re.compile(r"/v1/aliases"), self.create_alias),
            ("GET", re.compile(r"/v1/aliases/([^/]+)"), self.get_alias),
            ("PUT", re.compile(r"/v1/aliases/([^/]+)"), self.replace_alias),
            ("DELETE", re.compile(r"/v1/aliases/([^/]+)"), self.delete_alias),
        ]

    def handle(self, method: str, target: str, body: Any) -> Reply:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(parts.path.rstrip("/"))
            if route_method == method and match:
                try:
                    return handler(_Request(match.groups(), query, body))
                except Unsupported as exc:
                    return _error(501, str(exc))
                except NotFound as exc:
                    return _error(404, str(exc))
                except SandboxError as exc:
                    return _error(422, str(exc))
        if parts.path == "/v1/.well-known/openid-configuration":
            return 404, None
        return _error(501, f"the Weaviate sandbox does not implement {method} {parts.path}")

    # -- server ------------------------------------------------------------------------------
    def meta(self, request: _Request) -> Reply:
        return 200, {
            "hostname": self.hostname,
            "version": SERVER_VERSION,
            "modules": {},
            "grpcMaxMessageSize": GRPC_MAX_MESSAGE_SIZE,
        }

    def nodes(self, request: _Request) -> Reply:
        with self.store.lock:
            collections = [
                c
                for c in self.store.collections.values()
                if request.args[0] is None or c.name == schema_mod.class_name(request.args[0])
            ]
            shards = [
                {
                    "name": shard_name(c.name),
                    "class": c.name,
                    "objectCount": len(c.objects),
                    "vectorIndexingStatus": "READY",
                    "vectorQueueLength": 0,
                    "compressed": False,
                    "loaded": True,
                }
                for c in collections
            ]
        node = {
            "name": NODE_NAME,
            "status": "HEALTHY",
            "version": SERVER_VERSION,
            "gitHash": "sandbox",
            # Dynamic batching reads these: an empty queue and a high rate let it send freely.
            "batchStats": {"queueLength": 0, "ratePerSecond": 10000},
            "stats": {
                "shardCount": len(shards),
                "objectCount": sum(s["objectCount"] for s in shards),
            },
        }
        if request.query.get("output") == "verbose":
            node["shards"] = shards
        return 200, {"nodes": [node]}

    # -- schema ------------------------------------------------------------------------------
    def list_classes(self, request: _Request) -> Reply:
        with self.store.lock:
            # Copies: the reply is serialised after the lock is released, and auto-schema
            # may append properties meanwhile.
            classes = [copy.deepcopy(c.schema) for c in self.store.collections.values()]
            return 200, {"classes": classes}

    def create_class(self, request: _Request) -> Reply:
        if not isinstance(request.body, dict):
            return _error(422, "the request body must be a class object")
        try:
            return 200, copy.deepcopy(self.store.create(request.body))
        except AlreadyExists as exc:
            return _error(422, str(exc))

    def get_class(self, request: _Request) -> Reply:
        with self.store.lock:
            try:
                return 200, copy.deepcopy(self.store.get(request.args[0]).schema)
            except NotFound:
                return 404, None

    def delete_class(self, request: _Request) -> Reply:
        self.store.drop(request.args[0])
        return 200, None

    def add_property(self, request: _Request) -> Reply:
        with self.store.lock:
            collection = self.store.get(request.args[0])
            return 200, collection.add_property(request.body)

    def shards(self, request: _Request) -> Reply:
        with self.store.lock:
            collection = self.store.get(request.args[0])
            return 200, [
                {"name": shard_name(collection.name), "status": "READY", "vectorQueueSize": 0}
            ]

    # -- aliases -----------------------------------------------------------------------------
    def list_aliases(self, request: _Request) -> Reply:
        wanted = request.query.get("class")
        with self.store.lock:
            target = schema_mod.class_name(wanted) if wanted else None
            aliases = [
                {"alias": alias, "class": cls}
                for alias, cls in sorted(self.store.aliases.items())
                if target is None or cls == target
            ]
        return 200, {"aliases": aliases}

    def create_alias(self, request: _Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        alias, cls = self.store.create_alias(str(body.get("alias", "")), str(body.get("class", "")))
        return 200, {"alias": alias, "class": cls}

    def get_alias(self, request: _Request) -> Reply:
        alias = schema_mod.class_name(request.args[0])
        with self.store.lock:
            cls = self.store.aliases.get(alias)
        if cls is None:
            return _error(404, f"alias {alias} not found")
        return 200, {"alias": alias, "class": cls}

    def replace_alias(self, request: _Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        alias, cls = self.store.replace_alias(request.args[0], str(body.get("class", "")))
        return 200, {"alias": alias, "class": cls}

    def delete_alias(self, request: _Request) -> Reply:
        self.store.delete_alias(request.args[0])
        return 204, None

    # -- objects -----------------------------------------------------------------------------
    @staticmethod
    def _incoming(body: dict[str, Any], uuid: str) -> IncomingObject:
        vectors: dict[str | None, np.ndarray] = {}
        if body.get("vector"):
            vectors[None] = np.asarray(body["vector"], dtype=np.float32)
        for name, vec in (body.get("vectors") or {}).items():
            vectors[name] = np.asarray(vec, dtype=np.float32)
        return IncomingObject(uuid, body.get("properties") or {}, vectors)

    @staticmethod
    def _uuid(raw: str | None) -> str:
        try:
            return str(uuid_lib.UUID(raw)) if raw else str(uuid_lib.uuid4())
        except ValueError as exc:
            raise SandboxError(f"invalid uuid {raw!r}") from exc

    @staticmethod
    def _object_json(collection: Collection, obj: StoredObject, with_vector: bool) -> dict:
        out: dict[str, Any] = {
            "class": collection.name,
            "id": obj.uuid,
            "properties": obj.properties,
            "creationTimeUnix": obj.created_ms,
            "lastUpdateTimeUnix": obj.updated_ms,
        }
        if with_vector:
            vectors = {
                name: vec.tolist()
                for name in collection.spaces
                if (vec := collection.vector(name, obj)) is not None
            }
            if "" in vectors:
                out["vector"] = vectors[""]
            elif vectors:
                out["vectors"] = vectors
        return out

    def _put(self, collection: Collection, item: IncomingObject) -> StoredObject:
        errors = collection.put_many([item])
        if errors:
            raise SandboxError(errors[0])
        return collection.objects[item.uuid]

    def create_object(self, request: _Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        with self.store.lock:
            collection = self.store.get(str(body.get("class", "")))
            uuid = self._uuid(body.get("id"))
            if uuid in collection.objects:
                return _error(422, f"id '{uuid}' already exists")
            obj = self._put(collection, self._incoming(body, uuid))
            return 200, self._object_json(collection, obj, with_vector=True)

    def _find(self, request: _Request) -> tuple[Collection, StoredObject | None]:
        collection = self.store.get(request.args[0])
        return collection, collection.objects.get(self._uuid(request.args[1]))

    def get_object(self, request: _Request) -> Reply:
        with self.store.lock:
            collection, obj = self._find(request)
            if obj is None:
                return 404, None
            include = request.query.get("include", "").split(",")
            return 200, self._object_json(collection, obj, with_vector="vector" in include)

    def head_object(self, request: _Request) -> Reply:
        with self.store.lock:
            _, obj = self._find(request)
            return (204 if obj is not None else 404), None

    def delete_object(self, request: _Request) -> Reply:
        with self.store.lock:
            collection, obj = self._find(request)
            if obj is None:
                return 404, None
            collection.delete_many([obj.uuid])
            return 204, None

    def replace_object(self, request: _Request) -> Reply:
        with self.store.lock:
            collection, obj = self._find(request)
            if obj is None:
                return 404, None
            stored = self._put(collection, self._incoming(request.body or {}, obj.uuid))
            return 200, self._object_json(collection, stored, with_vector=False)

    def update_object(self, request: _Request) -> Reply:
        with self.store.lock:
            collection, obj = self._find(request)
            if obj is None:
                return 404, None
            body = dict(request.body or {})
            body["properties"] = {**obj.properties, **(body.get("properties") or {})}
            item = self._incoming(body, obj.uuid)
            if not item.vectors:
                item.vectors = {
                    name: vec
                    for name in collection.spaces
                    if (vec := collection.vector(name, obj)) is not None
                }
            self._put(collection, item)
            return 204, None


class _Request:
    def __init__(self, args: tuple[str | None, ...], query: dict[str, str], body: Any) -> None:
        self.args = args
        self.query = query
        self.body = body


def make_http_server(host: str, port: int, api: RestApi) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                status, payload = _error(400, "the request body is not valid JSON")
            else:
                try:
                    status, payload = api.handle(self.command, self.path, body)
                except Exception as exc:  # a sandbox bug: answer it instead of dropping the line
                    status, payload = _error(500, f"sandbox internal error: {exc!r}")
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the sandbox runs inside test processes."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
