"""Choosing and opening a Weaviate connection.

Modes: `local`/`custom` (a server at a URL), `cloud` (Weaviate Cloud), `embedded` (the real
server binary started by weaviate-client, pinned version), `sandbox` (this project's protocol
server, for offline runs and tests) and `auto`, which takes the first that can work: a configured
URL, then Embedded when its binary is cached or downloadable, then the sandbox with a warning.

Clients are created inside the process that uses them (never inherited across fork: the client's
batching threads can hang there), and API keys are never part of a description or an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import weaviate
from weaviate.classes.init import AdditionalConfig, Timeout
from weaviate.embedded import GITHUB_RELEASE_DOWNLOAD_URL

MODES = ("auto", "embedded", "local", "custom", "cloud", "sandbox")
EMBEDDED_VERSION = "1.30.5"
EMBEDDED_BINARY_DIR = Path.home() / ".cache" / "weaviate-embedded"


_SERVERS_STARTED: list[subprocess.Popen] = []


class WeaviateConnectionError(RuntimeError):
    pass


@dataclass(frozen=True)
class ConnectionSettings:
    mode: str = "auto"
    url: str | None = None
    grpc_port: int = 50051
    grpc_host: str | None = None
    api_key: str | None = field(default=None, repr=False)
    data_dir: str = ".data"
    embedded_port: int = 8079
    embedded_grpc_port: int = 50050
    sandbox_port: int = 8090
    sandbox_grpc_port: int = 50060
    timeout_seconds: float = 120.0


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


def _embedded_binary() -> Path:
    tag = f"v{EMBEDDED_VERSION}"
    return EMBEDDED_BINARY_DIR / f"weaviate-{tag}-{hashlib.sha256(tag.encode()).hexdigest()}"


def _embedded_available() -> tuple[bool, str]:
    """Embedded works when its binary is cached or its release can be reached quickly."""
    if _embedded_binary().exists():
        return True, f"binary cached at {_embedded_binary()}"
    url = f"{GITHUB_RELEASE_DOWNLOAD_URL}v{EMBEDDED_VERSION}/"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5)
    except urllib.error.HTTPError:
        return True, "binary downloadable"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"binary not cached and not downloadable ({exc.__class__.__name__})"
    return True, "binary downloadable"


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
        ok, why = _embedded_available()
        if ok:
            return Target(
                "embedded", f"embedded Weaviate {EMBEDDED_VERSION} (auto: {why})", settings
            )
        return Target(
            "sandbox",
            f"sandbox server on 127.0.0.1:{settings.sandbox_port} (auto: no WEAVIATE_URL; "
            f"Weaviate Embedded {why}). The sandbox is a test double: set WEAVIATE_URL for a "
            f"real Weaviate",
            settings,
        )
    if mode in ("local", "custom", "cloud"):
        if not settings.url:
            raise WeaviateConnectionError(f"Weaviate mode {mode!r} needs a URL (WEAVIATE_URL)")
        host, port, _ = _split_url(settings.url)
        return Target(mode, f"{mode} at {host}:{port}", settings)
    if mode == "embedded":
        return Target(mode, f"embedded Weaviate {EMBEDDED_VERSION}", settings)
    return Target(mode, f"sandbox server on 127.0.0.1:{settings.sandbox_port}", settings)


def _additional_config(settings: ConnectionSettings) -> AdditionalConfig:
    t = settings.timeout_seconds
    return AdditionalConfig(timeout=Timeout(init=30, query=t, insert=t))


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
        if target.mode == "embedded":
            return _connect_embedded(s)
        ensure_sandbox(s)
        return weaviate.connect_to_custom(
            http_host="127.0.0.1", http_port=s.sandbox_port, http_secure=False,
            grpc_host="127.0.0.1", grpc_port=s.sandbox_grpc_port, grpc_secure=False,
            additional_config=_additional_config(s),
        )  # fmt: skip
    except WeaviateConnectionError:
        raise
    except Exception as exc:
        message = str(exc)
        if s.api_key:
            message = message.replace(s.api_key, "***")
        raise WeaviateConnectionError(
            f"cannot connect to Weaviate ({target.description}): {message}"
        ) from None


def _connect_embedded(s: ConnectionSettings) -> weaviate.WeaviateClient:
    try:
        return weaviate.connect_to_embedded(
            version=EMBEDDED_VERSION,
            port=s.embedded_port,
            grpc_port=s.embedded_grpc_port,
            persistence_data_path=str(Path(s.data_dir) / "weaviate-embedded"),
            binary_path=str(EMBEDDED_BINARY_DIR),
        )
    except Exception as exc:
        raise WeaviateConnectionError(
            f"Weaviate Embedded {EMBEDDED_VERSION} could not start ({exc}). Its binary is "
            f"downloaded into {EMBEDDED_BINARY_DIR} on first use, which needs network access. "
            f"Other modes: 'local'/'custom' with WEAVIATE_URL for a running server, 'cloud' with "
            f"WEAVIATE_URL and WEAVIATE_API_KEY, or 'sandbox' for the offline protocol server"
        ) from None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/v1/.well-known/ready", timeout=2
        ) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def sandbox_running(s: ConnectionSettings) -> bool:
    return _ready(s.sandbox_port)


def sandbox_pid_file(data_dir: str | Path) -> Path:
    return Path(data_dir) / "sandbox" / "server.pid"


def ensure_sandbox(s: ConnectionSettings, wait_seconds: float = 60.0) -> None:
    """Start the sandbox server as its own long-lived process unless one already answers.

    Like Weaviate Embedded, the server outlives the run that started it: every run of a
    backfill, each in its own process, shares one server and its data directory.
    """
    if _ready(s.sandbox_port):
        return
    data = Path(s.data_dir) / "sandbox"
    data.mkdir(parents=True, exist_ok=True)
    # Runs of a backfill start together: the lock lets one of them start the server.
    with open(data / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _listening(s.sandbox_port):
            _spawn_sandbox(s, data)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if _ready(s.sandbox_port):
                return
            time.sleep(0.2)
    raise WeaviateConnectionError(
        f"the sandbox server did not become ready on 127.0.0.1:{s.sandbox_port} within "
        f"{wait_seconds:.0f}s; see {data / 'server.log'}"
    )


def _spawn_sandbox(s: ConnectionSettings, data: Path) -> None:
    with open(data / "server.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", "sandbox",
             "--port", str(s.sandbox_port), "--grpc-port", str(s.sandbox_grpc_port),
             "--data-dir", str(data / "data")],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    sandbox_pid_file(s.data_dir).write_text(str(process.pid))
    # The server outlives this process on purpose; holding the handle keeps Python from
    # warning, at exit, that a child it started is still running.
    _SERVERS_STARTED.append(process)


def stop_sandbox(s: ConnectionSettings, wait_seconds: float = 10.0) -> bool:
    """Stop the sandbox process this data directory started; False when none was running."""
    pid_file = sandbox_pid_file(s.data_dir)
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not _port_freed(s.sandbox_port, wait_seconds):
        # A server that ignores SIGTERM that long (a busy machine, a stuck request) is killed:
        # the caller was told the port is free.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _port_freed(s.sandbox_port, wait_seconds)
    return True


def _port_freed(port: int, wait_seconds: float) -> bool:
    """Whether nothing listens on `port` any more, waiting up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and _listening(port):
        time.sleep(0.1)
    return not _listening(port)
