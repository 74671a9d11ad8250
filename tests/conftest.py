"""Shared fixtures: a Weaviate-protocol target to test against.

`weaviate_target` runs each test against the in-process sandbox and, where `WEAVIATE_URL` is
set, against that real Weaviate too, so the sandbox's behaviour is checked against the server
it stands in for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import weaviate
from weaviate.classes.init import Auth

from resources.weaviate.sandbox import SandboxServer


@dataclass(frozen=True)
class WeaviateTarget:
    """Where a Weaviate-protocol server listens; `kind` is "sandbox" or "real"."""

    kind: str
    host: str
    http_port: int
    grpc_port: int
    api_key: str | None = None
    secure: bool = False


def connect(target: WeaviateTarget) -> weaviate.WeaviateClient:
    """Opens (and connects) a client; the caller closes it."""
    return weaviate.connect_to_custom(
        http_host=target.host,
        http_port=target.http_port,
        http_secure=target.secure,
        grpc_host=target.host,
        grpc_port=target.grpc_port,
        grpc_secure=target.secure,
        auth_credentials=Auth.api_key(target.api_key) if target.api_key else None,
    )


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    data_dir: Path = tmp_path_factory.mktemp("weaviate-sandbox")
    with SandboxServer(host="127.0.0.1", http_port=0, grpc_port=0, data_dir=data_dir) as srv:
        yield srv


def _real_target() -> WeaviateTarget:
    url = os.environ.get("WEAVIATE_URL")
    if not url:
        pytest.skip("WEAVIATE_URL is not set: no real Weaviate server to test against")
    parts = urlsplit(url if "://" in url else f"http://{url}")
    secure = parts.scheme == "https"
    return WeaviateTarget(
        kind="real",
        host=parts.hostname or "localhost",
        http_port=parts.port or (443 if secure else 8080),
        grpc_port=int(os.environ.get("WEAVIATE_GRPC_PORT", "50051")),
        api_key=os.environ.get("WEAVIATE_API_KEY") or None,
        secure=secure,
    )


@pytest.fixture(params=["sandbox", "real"])
def weaviate_target(request: pytest.FixtureRequest) -> WeaviateTarget:
    if request.param == "real":
        return _real_target()
    srv: SandboxServer = request.getfixturevalue("sandbox")
    return WeaviateTarget(
        kind="sandbox", host=srv.host, http_port=srv.http_port, grpc_port=srv.grpc_port
    )


@pytest.fixture(autouse=True)
def _forget_dagster_instances_after_each_test() -> Iterator[None]:
    """A Dagster instance used as a context manager registers its state storage in a context
    variable; when a test's instance is garbage-collected while still registered, every later
    Definitions load in the session fails ("undefined DagsterInstance weakref"). Each test
    starts with none registered."""
    yield
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
