"""The managed local Weaviate: the real server binary, pinned, run as a process of its own.

The binary is built once from Weaviate's Go module (`go install`, no cgo) into a cache outside
any checkout, so every clone on a machine shares it. Without Go it is downloaded by
weaviate-client's embedded mode, whose file-name convention the Go-built binary follows, so
both paths fill the same cache file.

The server outlives the process that started it, like a database a user starts by hand: every
run of a backfill, each in its own process, shares one server and its data directory. A lock
lets concurrent runs agree on who starts it; the others wait for it to be ready.

weaviate-client's own embedded mode is not used to run the server: it stops the server when the
client that started it closes, so one run finishing would cut off the runs still writing.

Nothing of the server answers without credentials: Weaviate binds its gRPC API and its cluster
data API on every interface (it has no setting for their address), so the server always asks
for an API key (the configured one, else one generated on first use) and its nodes for a
cluster password, each kept in a file of the data folder that only its owner can read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from resources import settings
from resources.capacity import Machine, physical_memory, server_memory_limit
from resources.processes import process_alive, usable_cpus

# The newest release that builds from the Go module proxy: 1.39.4 and later need
# github.com/weaviate/sroar v0.0.17 or v0.0.18, whose module archives the proxy refuses (403),
# so `go install` fails on them; 1.39.3 needs v0.0.16, which it serves. weaviate-client 4.23's
# own CI tests 1.39; aliases need 1.32+, server-side batching (`batch.stream`) 1.36+, and its
# go.mod asks for Go 1.26. Since 1.38 every replicated collection replicates asynchronously
# (`schema.py`, IndexLayout.replication).
WEAVIATE_VERSION = "1.39.3"
GO_PACKAGE = "github.com/weaviate/weaviate/cmd/weaviate-server"
CACHE_DIR = Path(settings.weaviate_cache())
READY_SECONDS = 180.0  # a first start on a busy 2-core machine replays no log and takes seconds
# How long a port may stay taken by a server that is just exiting (a stop or a kill a moment
# ago) before it counts as another program's.
PORT_RELEASE_SECONDS = 10.0
NODE_NAME = "node1"  # Raft stores it: it must not change between starts of one data directory
API_KEY_FILE = "api-key"
CLUSTER_PASSWORD_FILE = "cluster-password"
# The user of the cluster API's basic authentication, which every node of a cluster shares with
# the password; the password is the secret.
CLUSTER_USER = "weaviate-indexer"

Progress = Callable[[str], None]


class ServerError(RuntimeError):
    """The managed server could not be installed, started or reached; says what to do."""


def binary_path(version: str = WEAVIATE_VERSION) -> Path:
    """weaviate-client's embedded file name, `weaviate-v<version>-<sha256 of "v<version>">`, so
    `connect_to_embedded(binary_path=CACHE_DIR)` and this module find the same binary."""
    tag = f"v{version}"
    return CACHE_DIR / f"weaviate-{tag}-{hashlib.sha256(tag.encode()).hexdigest()}"


def install_binary(version: str = WEAVIATE_VERSION, progress: Progress = print) -> Path:
    """The cached server binary, built with Go or, failing that, downloaded; built only once."""
    target = binary_path(version)
    if target.is_file():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Two clones running `make test` at once must not build into each other's file.
    with _locked(CACHE_DIR / f"install-v{version}.lock"):
        if target.is_file():
            return target
        go = shutil.which("go")
        if go:
            return _build_with_go(go, version, target, progress)
        try:
            return _download(version, target, progress)
        except Exception as exc:
            raise ServerError(
                f"no Weaviate server binary at {target}: Go is not installed (Go 1.26+ builds "
                f"it with `go install {GO_PACKAGE}@v{version}`), and the release download "
                f"failed ({exc.__class__.__name__}: {exc}). Install Go, or set WEAVIATE_URL to "
                "a running Weaviate"
            ) from None


def _build_with_go(go: str, version: str, target: Path, progress: Progress) -> Path:
    progress(f"building the Weaviate server v{version} from its Go module into {CACHE_DIR}")
    progress("(once per machine; the first build downloads its modules and takes minutes)")
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as gobin:
        env = {**os.environ, "CGO_ENABLED": "0", "GOBIN": gobin}
        command = [go, "install", "-trimpath", "-ldflags=-s -w", f"{GO_PACKAGE}@v{version}"]
        started = time.monotonic()
        with _heartbeat(progress, started, "still building"):
            done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ServerError(
                f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stderr[-3000:]}\n"
                "Set WEAVIATE_URL to use a running Weaviate instead"
            )
        built = Path(gobin) / "weaviate-server"
        built.chmod(0o755)
        built.rename(target)
    progress(f"built {target} in {time.monotonic() - started:.0f}s")
    return target


def _download(version: str, target: Path, progress: Progress) -> Path:
    from weaviate.embedded import EmbeddedOptions, EmbeddedV4

    progress(f"downloading the Weaviate server v{version} release into {CACHE_DIR}")
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as scratch:
        options = EmbeddedOptions(
            binary_path=str(CACHE_DIR), persistence_data_path=scratch, version=version
        )
        with _heartbeat(progress, time.monotonic(), "still downloading"):
            EmbeddedV4(options).ensure_weaviate_binary_exists()
    return target


@contextlib.contextmanager
def _heartbeat(progress: Progress, started: float, what: str) -> Iterator[None]:
    """A line every 30 s, so a long build is visibly alive."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(30):
            progress(f"  {what} ({time.monotonic() - started:.0f}s)")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class LocalServer:
    """One Weaviate node on 127.0.0.1 with its data in `root/data` and its log in `root`.

    The cluster ports (gossip, data, Raft, Raft RPC) are `cluster_port` to `cluster_port + 3`;
    Weaviate's localhost mode takes a node's RPC port as its Raft port + 1.

    Clients send `api_key`: `configured_api_key` when set, else the key generated for this
    data folder. The generated key and the cluster password are kept in `secrets_dir` (`root`,
    or a cluster's own folder, which its nodes share).

    Alone, the node is a one-node cluster. As a member of a cluster (`cluster.py`), `members`
    names every node of it with its cluster port: the node joins the others' gossip
    (CLUSTER_JOIN lists them all, so any node can restart alone) and Raft (RAFT_JOIN lists
    every voter with its own Raft port, which localhost mode cannot derive).
    """

    root: Path
    http_port: int = settings.weaviate_managed_port.default
    grpc_port: int = settings.weaviate_managed_grpc_port.default
    cluster_port: int = settings.weaviate_managed_cluster_port.default
    configured_api_key: str | None = field(default=None, repr=False)
    version: str = WEAVIATE_VERSION
    extra_env: tuple[tuple[str, str], ...] = ()
    node: str = NODE_NAME
    members: tuple[tuple[str, int], ...] = ()  # (node name, cluster port) of every member
    secrets_dir: Path | None = None

    @classmethod
    def on_free_ports(
        cls, root: Path, api_key: str | None = None, extra_env: tuple[tuple[str, str], ...] = ()
    ) -> LocalServer:
        """A server on ports free now (HTTP, gRPC and the four cluster ports in one block), for
        tests and benchmarks that run beside other servers."""
        first = free_port_block(6)
        return cls(root=root, http_port=first, grpc_port=first + 1, cluster_port=first + 2,
                   configured_api_key=api_key, extra_env=extra_env)  # fmt: skip

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def _pid_file(self) -> Path:
        return self.root / "server.json"

    @property
    def _secrets(self) -> Path:
        return self.secrets_dir or self.root

    @property
    def api_key_file(self) -> Path:
        return self._secrets / API_KEY_FILE

    @property
    def api_key(self) -> str:
        """The key clients send and the server accepts: the configured one, else the one made
        for this data folder on first use, so every process that reaches the server finds it."""
        return self.configured_api_key or kept_secret(self.api_key_file)

    def api_key_origin(self) -> str:
        """Where the key comes from, to show instead of the key."""
        if self.configured_api_key:
            return "API key: the configured one (WEAVIATE_API_KEY)"
        return f"API key: generated, kept in {self.api_key_file}"

    def hide_secrets(self, text: str) -> str:
        """`text` with this server's key and cluster password replaced by ***, for errors."""
        files = (self._secrets / API_KEY_FILE, self._secrets / CLUSTER_PASSWORD_FILE)
        for secret in filter(None, [self.configured_api_key, *map(_read_secret, files)]):
            text = text.replace(secret, "***")
        return text

    def describe(self) -> str:
        node = f" node {self.node}" if self.members else ""
        return (
            f"managed Weaviate {self.version}{node} on 127.0.0.1:{self.http_port} "
            f"(data {self.root})"
        )

    def environment(self) -> dict[str, str]:
        gossip, data, raft, raft_rpc = (self.cluster_port + i for i in range(4))
        members = self.members or ((self.node, self.cluster_port),)
        env = {
            "PERSISTENCE_DATA_PATH": str(self.root / "data"),
            "GRPC_PORT": str(self.grpc_port),
            "CLUSTER_HOSTNAME": self.node,
            "CLUSTER_IN_LOCALHOST": "true",
            "CLUSTER_BIND_ADDR": "127.0.0.1",
            "CLUSTER_GOSSIP_BIND_PORT": str(gossip),
            "CLUSTER_DATA_BIND_PORT": str(data),
            "RAFT_PORT": str(raft),
            "RAFT_INTERNAL_RPC_PORT": str(raft_rpc),
            "RAFT_BOOTSTRAP_EXPECT": str(len(members)),
            "RAFT_JOIN": ",".join(f"{name}:{port + 2}" for name, port in members),
            "DISABLE_TELEMETRY": "true",
            "GO_PROFILING_DISABLE": "true",
            "DEFAULT_VECTORIZER_MODULE": "none",
            "ENABLE_MODULES": "",
            "LOG_FORMAT": "text",
        }
        if "GOMEMLIMIT" not in os.environ:  # the user's own limit wins
            # The nodes of a local cluster share this machine's memory.
            machine = Machine(usable_cpus(), 0, physical_memory())
            env["GOMEMLIMIT"] = f"{server_memory_limit(machine) // len(members) // 2**20}MiB"
        others = [f"127.0.0.1:{port}" for name, port in members if name != self.node]
        if others:
            env["CLUSTER_JOIN"] = ",".join(others)
        else:
            # A lone node elects itself once Raft's heartbeat timeout passes; Weaviate multiplies
            # its timeouts by 5 against elections among busy peers, which a lone node has none
            # of, and a start then took 6 to 10 s on 2 cores instead of about 2.
            env["RAFT_TIMEOUTS_MULTIPLIER"] = "1"
        return env | dict(self.extra_env)

    def _credentials(self) -> dict[str, str]:
        """The settings that hold secrets, apart from `environment()` so that reading the
        settings never makes a secret. gRPC and the cluster data API listen on every interface
        (the server has no setting for their address): the API key guards gRPC and REST, the
        cluster password the data API, which the nodes of a cluster call each other on."""
        return {
            "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
            "AUTHENTICATION_APIKEY_ENABLED": "true",
            "AUTHENTICATION_APIKEY_ALLOWED_KEYS": self.api_key,
            "AUTHENTICATION_APIKEY_USERS": "indexer",
            "CLUSTER_BASIC_AUTH_USERNAME": CLUSTER_USER,
            "CLUSTER_BASIC_AUTH_PASSWORD": kept_secret(self._secrets / CLUSTER_PASSWORD_FILE),
        }

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}/v1/.well-known/ready", timeout=2
            ) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _recorded_pid(self) -> int | None:
        try:
            return int(json.loads(self._pid_file.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def pid(self) -> int | None:
        """The process this data directory's server runs as, if it is alive."""
        pid = self._recorded_pid()
        return pid if pid is not None and process_alive(pid) and _runs_weaviate(pid) else None

    def start(self, progress: Progress = print, wait_seconds: float = READY_SECONDS) -> bool:
        """Start the server unless it already answers; True when this call started it."""
        if self.ready():
            return False
        binary = install_binary(self.version, progress)
        # Runs of a backfill start together: the lock lets one of them start the server.
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / "start.lock"):
            started = self.launch(binary)
            self.wait_ready(wait_seconds)
        return started

    def launch(self, binary: Path) -> bool:
        """Start the process unless this node runs already, without waiting for it to be ready
        (a cluster's nodes are ready only once enough of them run); True when it started it."""
        if self.ready() or self.pid() is not None:
            return False
        busy = _busy_ports((self.http_port, self.grpc_port), PORT_RELEASE_SECONDS)
        if busy:
            raise ServerError(
                f"cannot start {self.describe()}: port {busy[0]} is taken by another "
                "program; choose other ports or stop it"
            )
        self._spawn(binary)
        return True

    def _spawn(self, binary: Path) -> None:
        """Start the server detached: a shell starts it in the background and exits, so the
        server is nobody's child here and outlives this process without a zombie or a warning."""
        self.root.mkdir(parents=True, exist_ok=True)
        command = [str(binary), "--host", "127.0.0.1", "--port", str(self.http_port),
                   "--scheme", "http", "--read-timeout=600s", "--write-timeout=600s"]  # fmt: skip
        log = shlex.quote(str(self.log_file))
        shell = subprocess.run(
            ["/bin/sh", "-c", f'"$@" >>{log} 2>&1 </dev/null & echo $!', "sh", *command],
            env={**os.environ, **self._credentials(), **self.environment()},
            stdout=subprocess.PIPE, text=True, check=True, start_new_session=True,
        )  # fmt: skip
        self._pid_file.write_text(json.dumps({"pid": int(shell.stdout), "version": self.version,
                                              "http_port": self.http_port,
                                              "grpc_port": self.grpc_port}))  # fmt: skip

    def wait_ready(self, wait_seconds: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + wait_seconds
        failure = f"did not become ready within {wait_seconds:.0f}s"
        while time.monotonic() < deadline:
            if self.ready():
                return
            pid = self._recorded_pid()
            if (pid is None or not process_alive(pid)) and not _listening(self.http_port):
                failure = "exited before it was ready"
                break
            time.sleep(0.2)
        raise ServerError(
            f"{self.describe()} {failure}; the end of its log ({self.log_file}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        try:
            tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
        return self.hide_secrets(tail)

    def stop(self, wait_seconds: float = 30.0) -> bool:
        """Stop the server this data directory runs; False when none was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        if not _exited(pid, wait_seconds):
            # A server that ignores SIGTERM that long is killed: the caller was told it stopped.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _exited(pid, wait_seconds)
        self._pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL, as a lost node or the OOM killer would; the data directory stays."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _exited(pid, 30.0)

    def status(self) -> str:
        pid = self.pid()
        if self.ready():
            return f"running: {self.describe()}, pid {pid if pid else '(not started here)'}"
        if pid is not None:
            return f"starting or unhealthy: {self.describe()}, pid {pid}; log {self.log_file}"
        return f"stopped: {self.describe()}"


def kept_secret(path: Path) -> str:
    """The secret in `path`, made on first use: random, readable by its owner only (mkstemp's
    0600), written whole under another name and linked into place, so that processes starting
    the server and clients connecting at the same moment all read the one made first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(scratch, path)
        finally:
            os.unlink(scratch)
    secret = _read_secret(path)
    if not secret:
        raise ServerError(f"{path} is empty: delete it, and a new secret is made on next use")
    return secret


def _read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def free_port_block(count: int) -> int:
    """The first of `count` consecutive ports free now on every interface, below the kernel's
    ephemeral range: a port in that range can be taken by any outgoing connection (a client's
    own) between this check and the server's bind, and the server's gRPC and data ports bind
    every interface."""
    low, high = _ephemeral_ports()
    start, stop = (10_000, low) if low - 10_000 > 100 * count else (high + 1, 65_536)
    pick = random.Random()
    for _ in range(200):
        first = pick.randrange(start, stop - count)
        if all(_bindable(port) for port in range(first, first + count)):
            return first
    raise ServerError(f"no {count} consecutive free ports between {start} and {stop}")


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def _busy_ports(ports: tuple[int, ...], wait_seconds: float) -> list[int]:
    """The ports something listens on, after waiting a while for a server that is just
    exiting (a stop or a kill a moment ago) to let them go."""
    deadline = time.monotonic() + wait_seconds
    while (busy := [p for p in ports if _listening(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return busy


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _runs_weaviate(pid: int) -> bool:
    """Guards against a stale pid file whose number now belongs to another program."""
    try:
        return b"weaviate" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc
        return True


def _exited(pid: int, wait_seconds: float) -> bool:
    """Whether `pid` is gone, waiting up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return False
