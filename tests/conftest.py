"""Shared fixtures: one real Weaviate server for the whole session.

`weaviate_server` is the pinned Weaviate binary (built once per machine into the cache, see
`resources/weaviate/server.py`) run on free loopback ports with its data in the session's
temporary folder. Tests that restart or kill a server start one of their own with
`start_server`. `weaviate_cluster` is three such nodes forming one cluster
(`resources/weaviate/cluster.py`), started once, with every node running at each test's start
and end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import weaviate
from weaviate.classes.init import Auth

from resources.weaviate.cluster import LocalCluster
from resources.weaviate.connection import ConnectionSettings
from resources.weaviate.server import LocalServer


@dataclass(frozen=True)
class WeaviateTarget:
    """Where a Weaviate server listens."""

    host: str
    http_port: int
    grpc_port: int
    api_key: str | None = None

    @classmethod
    def of(cls, server: LocalServer) -> WeaviateTarget:
        return cls("127.0.0.1", server.http_port, server.grpc_port, server.api_key)


def connect(target: WeaviateTarget | LocalServer) -> weaviate.WeaviateClient:
    """Opens (and connects) a client; the caller closes it."""
    if isinstance(target, LocalServer):
        target = WeaviateTarget.of(target)
    return weaviate.connect_to_custom(
        http_host=target.host,
        http_port=target.http_port,
        http_secure=False,
        grpc_host=target.host,
        grpc_port=target.grpc_port,
        grpc_secure=False,
        auth_credentials=Auth.api_key(target.api_key) if target.api_key else None,
    )


def server_settings(root: Path, api_key: str | None = None, **env: str) -> LocalServer:
    """A server on free ports (HTTP, gRPC and four cluster ports in one block)."""
    return LocalServer.on_free_ports(root, api_key, tuple(env.items()))


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Starts servers of the test's own (to restart or kill), stopped after the test."""
    started: list[LocalServer] = []

    def start(api_key: str | None = None, **env: str) -> LocalServer:
        server = server_settings(tmp_path_factory.mktemp("weaviate"), api_key, **env)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def weaviate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = server_settings(tmp_path_factory.mktemp("weaviate-session"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _session_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster.on_free_ports(tmp_path_factory.mktemp("weaviate-cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def weaviate_cluster(_session_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """Three nodes, all running and healthy; nodes a test kills are started again after it."""
    _session_cluster.start()
    yield _session_cluster
    _session_cluster.start()


@pytest.fixture
def cluster_collection(_session_cluster: LocalCluster) -> Iterator[str]:
    """A fresh collection name on the cluster; after the test every node is started again (a
    test may have killed some) and the collection deleted."""
    name = f"Cluster_{uuid.uuid4().hex[:6]}"
    yield name
    _session_cluster.start()
    with connect(_session_cluster.nodes[0]) as client:
        client.collections.delete(name)


def managed_settings(data_dir: Path, **fields: object) -> ConnectionSettings:
    """The settings of a managed server with its data in `data_dir`, on ports free now."""
    first = LocalServer.on_free_ports(data_dir).http_port  # a block of six free ports
    return ConnectionSettings(data_dir=str(data_dir), managed_port=first,
                              managed_grpc_port=first + 1, managed_cluster_port=first + 2,
                              **fields)  # fmt: skip


@pytest.fixture
def weaviate_target(weaviate_server: LocalServer) -> WeaviateTarget:
    return WeaviateTarget.of(weaviate_server)


@pytest.fixture(autouse=True)
def _forget_dagster_instances_after_each_test() -> Iterator[None]:
    """A Dagster instance used as a context manager registers its state storage in a context
    variable; when a test's instance is garbage-collected while still registered, every later
    Definitions load in the session fails ("undefined DagsterInstance weakref"). Each test
    starts with none registered, and leaves none behind."""
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
    yield
    _current_storage.set(None)


def snapshot(server: LocalServer, collection: str) -> dict[str, tuple[dict, np.ndarray]]:
    """Every object of `collection`: uuid -> (properties, vector), to compare two indexes."""
    with connect(server) as client:
        objects = client.collections.get(collection).iterator(include_vector=True)
        return {str(o.uuid): (o.properties, np.array(o.vector["default"])) for o in objects}


def assert_same_index(server: LocalServer, expected: str, actual: str) -> int:
    """Two collections hold the same ids, properties and vectors; returns how many objects."""
    want, got = snapshot(server, expected), snapshot(server, actual)
    assert set(got) == set(want)
    for object_id, (properties, vector) in want.items():
        assert got[object_id][0] == properties
        np.testing.assert_allclose(got[object_id][1], vector, atol=1e-6)
    return len(got)


@pytest.fixture
def two_collections(weaviate_server: LocalServer) -> Iterator[tuple[str, str]]:
    """Names for a reference index and one under test, dropped afterwards."""
    names = tuple(f"Index_{uuid.uuid4().hex[:8]}" for _ in range(2))
    yield names
    with connect(weaviate_server) as client:
        for name in names:
            client.collections.delete(name)
