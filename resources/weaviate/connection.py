"""Choosing and opening a Weaviate connection.

Modes: `local`/`custom` (a server at a URL), `cloud` (Weaviate Cloud), `managed` (the real
server binary run on 127.0.0.1 by this project, see `server.py`) and `auto`: the configured URL
when there is one, else the managed server. Nothing falls back to a stand-in: a server that
cannot be reached is an error that says what to do.

Clients are created inside the process that uses them (never inherited across fork: the client's
batching threads can hang there), and API keys are never part of a description or an error. The
managed server always asks for a key: `WEAVIATE_API_KEY` when set, else the one generated in its
data folder, which every process that connects to it reads there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import weaviate
from weaviate.classes.init import AdditionalConfig, Timeout

from resources import settings as defaults
from resources.weaviate.server import LocalServer, ServerError

MODES = ("auto", "managed", "local", "custom", "cloud")


class WeaviateConnectionError(RuntimeError):
    pass


@dataclass(frozen=True)
class ConnectionSettings:
    """Where to connect and how. The defaults are the settings' own (`resources/settings.py`),
    not the environment's: the resource reads the environment."""

    mode: str = defaults.weaviate_mode.default
    url: str | None = None
    grpc_port: int = defaults.weaviate_grpc_port.default
    grpc_host: str | None = None
    api_key: str | None = field(default=None, repr=False)
    data_dir: str = defaults.data_dir.default
    managed_port: int = defaults.weaviate_managed_port.default
    managed_grpc_port: int = defaults.weaviate_managed_grpc_port.default
    managed_cluster_port: int = defaults.weaviate_managed_cluster_port.default
    async_indexing: bool = defaults.weaviate_async_indexing.default
    batch_timeout_seconds: float = defaults.weaviate_batch_timeout_seconds.default

    def managed_server(self) -> LocalServer:
        """The managed server of this data directory (its data under `<data_dir>/weaviate`)."""
        return LocalServer(
            root=Path(self.data_dir) / "weaviate",
            http_port=self.managed_port,
            grpc_port=self.managed_grpc_port,
            cluster_port=self.managed_cluster_port,
            configured_api_key=self.api_key,
            extra_env=(("ASYNC_INDEXING", "true"),) if self.async_indexing else (),
        )


@dataclass(frozen=True)
class Target:
    """A resolved connection: the mode actually used and why, safe to log and to record."""

    mode: str
    description: str
    settings: ConnectionSettings

    def connect(self) -> weaviate.WeaviateClient:
        return _connect(self)


def _split_url(url: str) -> tuple[str, int, bool]:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    secure = parsed.scheme == "https"
    if not parsed.hostname:
        raise WeaviateConnectionError(f"WEAVIATE_URL {url!r} has no host")
    return parsed.hostname, parsed.port or (443 if secure else 8080), secure


def resolve(settings: ConnectionSettings) -> Target:
    """Pick the mode to use, explaining the choice (the explanation goes into metadata)."""
    mode = settings.mode.lower()
    if mode not in MODES:
        raise WeaviateConnectionError(
            f"unknown Weaviate mode {settings.mode!r}; use one of {MODES}"
        )
    if mode == "auto":
        if settings.url:
            host, port, _ = _split_url(settings.url)
            return Target(
                "custom", f"custom at {host}:{port} (auto: WEAVIATE_URL is set)", settings
            )
        server = settings.managed_server().describe()
        return Target("managed", f"{server} (auto: no WEAVIATE_URL)", settings)
    if mode in ("local", "custom", "cloud"):
        if not settings.url:
            raise WeaviateConnectionError(f"Weaviate mode {mode!r} needs a URL (WEAVIATE_URL)")
        host, port, _ = _split_url(settings.url)
        return Target(mode, f"{mode} at {host}:{port}", settings)
    return Target(mode, settings.managed_server().describe(), settings)


def _additional_config(settings: ConnectionSettings) -> AdditionalConfig:
    """Every request gets `batch_timeout_seconds`: when a cluster loses its Raft leader, a write
    or a schema read in flight gets no answer until its deadline (Weaviate 1.37 and 1.39;
    BENCHMARKS.md, "A three-node cluster"), and its retry (`calls.Calls`) then succeeds once a
    new leader is elected, so the deadline is how long the pipeline pauses."""
    deadline = settings.batch_timeout_seconds
    return AdditionalConfig(timeout=Timeout(init=30, query=deadline, insert=deadline))


def _connect(target: Target) -> weaviate.WeaviateClient:
    s = target.settings
    try:
        if target.mode in ("local", "custom"):
            host, port, secure = _split_url(s.url or "")
            return weaviate.connect_to_custom(
                http_host=host, http_port=port, http_secure=secure,
                grpc_host=s.grpc_host or host, grpc_port=s.grpc_port, grpc_secure=secure,
                auth_credentials=s.api_key or None, additional_config=_additional_config(s),
            )  # fmt: skip
        if target.mode == "cloud":
            if not s.api_key:
                raise WeaviateConnectionError("Weaviate mode 'cloud' needs WEAVIATE_API_KEY")
            return weaviate.connect_to_weaviate_cloud(
                s.url or "", auth_credentials=s.api_key, additional_config=_additional_config(s)
            )
        return _connect_managed(s)
    except WeaviateConnectionError:
        raise
    except Exception as exc:
        raise WeaviateConnectionError(
            f"cannot reach Weaviate ({target.description}): start it, or point WEAVIATE_URL "
            f"(and WEAVIATE_GRPC_PORT) at one that runs; unset WEAVIATE_URL to use the managed "
            f"server.\nThe client said: {_hidden(target, str(exc))}"
        ) from None


def _hidden(target: Target, message: str) -> str:
    """The client's message without the key it was given."""
    if target.mode == "managed":
        return target.settings.managed_server().hide_secrets(message)
    key = target.settings.api_key
    return message.replace(key, "***") if key else message


def _connect_managed(s: ConnectionSettings) -> weaviate.WeaviateClient:
    server = s.managed_server()
    try:
        server.start()
    except ServerError as exc:
        raise WeaviateConnectionError(str(exc)) from None
    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=server.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=server.grpc_port, grpc_secure=False,
        auth_credentials=server.api_key, additional_config=_additional_config(s),
    )  # fmt: skip
