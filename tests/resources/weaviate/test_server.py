"""The managed server: the real Weaviate binary, started once per data directory and shared.

Every run of a backfill calls `start()` on the same settings, often at the same moment, and
leaves the server running for the next; what they must agree on is that there is one server
per data directory, that it keeps its data, and that when it cannot run the error says why.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from weaviate.classes.config import Configure, DataType, Property
from weaviate.exceptions import UnexpectedStatusCodeError
from weaviate.proto.v1 import search_get_pb2, weaviate_pb2_grpc
from weaviate.util import generate_uuid5

from resources.weaviate import server as server_module
from resources.weaviate.server import (
    GO_PACKAGE,
    WEAVIATE_VERSION,
    LocalServer,
    ServerError,
    binary_path,
    install_binary,
)
from tests.conftest import WeaviateTarget, connect, server_settings

StartServer = Callable[..., LocalServer]
REPO = Path(__file__).resolve().parents[3]
KEY = "server-test-key-31337"


def server_processes(server: LocalServer) -> list[int]:
    """The pids of every Weaviate process serving this server's HTTP port."""
    wanted = [str(binary_path(server.version)), "--host", "127.0.0.1", "--port",
              str(server.http_port)]  # fmt: skip
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if args[: len(wanted)] == wanted:
            found.append(int(proc.name))
    return found


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_is_idempotent_and_stop_frees_the_ports(start_server: StartServer) -> None:
    server = start_server()
    assert server.ready()
    pid = server.pid()
    assert pid is not None and server_processes(server) == [pid]
    assert server.status() == f"running: {server.describe()}, pid {pid}"

    assert server.start() is False
    assert dataclasses.replace(server).start() is False, "settings alone identify the server"
    assert server.pid() == pid and server_processes(server) == [pid]

    assert server.stop() is True
    assert server.status() == f"stopped: {server.describe()}"
    assert server.pid() is None and server_processes(server) == []
    assert not server.ready()
    assert not listening(server.http_port) and not listening(server.grpc_port)
    assert server.stop() is False


def test_the_suite_runs_the_pinned_server(weaviate_server: LocalServer) -> None:
    meta = urllib.request.Request(
        f"http://127.0.0.1:{weaviate_server.http_port}/v1/meta",
        headers={"Authorization": f"Bearer {weaviate_server.api_key}"},
    )
    with urllib.request.urlopen(meta, timeout=10) as response:
        assert json.load(response)["version"] == WEAVIATE_VERSION == "1.39.3"
    assert weaviate_server.version == WEAVIATE_VERSION


def test_the_server_runs_with_a_soft_memory_limit(weaviate_server: LocalServer) -> None:
    """Without one, Weaviate 1.39 warns at start that its memory checks never act."""
    environ = Path(f"/proc/{weaviate_server.pid()}/environ").read_bytes().split(b"\0")
    limits = [v.decode() for v in environ if v.startswith(b"GOMEMLIMIT=")]
    assert len(limits) == 1 and limits[0].endswith("MiB"), limits
    assert int(limits[0].removeprefix("GOMEMLIMIT=").removesuffix("MiB")) > 1024
    assert "GOMEMLIMIT is not set" not in weaviate_server.log_file.read_text()


def test_the_users_own_memory_limit_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GOMEMLIMIT", "3GiB")
    assert "GOMEMLIMIT" not in server_settings(tmp_path).environment()  # inherited as it is
    monkeypatch.delenv("GOMEMLIMIT")
    assert server_settings(tmp_path).environment()["GOMEMLIMIT"].endswith("MiB")


# A child that starts the server only once both children are up and waiting, so their start()
# calls overlap as two runs of a backfill do.
START_AT_ONCE = """
import sys, time
from pathlib import Path
from resources.weaviate.server import LocalServer

root, http, grpc_port, cluster, name = sys.argv[1:]
server = LocalServer(Path(root), int(http), int(grpc_port), int(cluster))
(Path(root) / name).touch()
while not (Path(root) / "go").exists():
    time.sleep(0.01)
print(server.start(progress=lambda _: None))
"""


def test_concurrent_starts_share_one_server(tmp_path: Path) -> None:
    server = server_settings(tmp_path / "shared")
    server.root.mkdir()
    args = [str(server.root), str(server.http_port), str(server.grpc_port),
            str(server.cluster_port)]  # fmt: skip
    children = [
        subprocess.Popen(
            [sys.executable, "-c", START_AT_ONCE, *args, f"waiting-{i}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    try:
        while not all((server.root / f"waiting-{i}").exists() for i in range(2)):
            assert all(c.poll() is None for c in children), [c.communicate() for c in children]
            time.sleep(0.05)
        (server.root / "go").touch()
        outputs = [c.communicate(timeout=300) for c in children]
        assert [c.returncode for c in children] == [0, 0], outputs
        assert sorted(out.strip() for out, _ in outputs) == ["False", "True"]
        pid = server.pid()
        assert pid is not None and server_processes(server) == [pid]
        assert server.log_file.read_text().count("Serving weaviate at") == 1
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        server.stop()
    assert server_processes(server) == []


def test_a_server_with_a_key_refuses_anonymous_clients(start_server: StartServer) -> None:
    server = start_server(api_key=KEY)
    assert KEY not in repr(server)
    assert server.api_key_origin() == "API key: the configured one (WEAVIATE_API_KEY)"
    assert not server.api_key_file.exists(), "a configured key is never written down"
    anonymous = dataclasses.replace(WeaviateTarget.of(server), api_key=None)
    with pytest.raises(UnexpectedStatusCodeError) as err:
        connect(anonymous)
    assert err.value.status_code == 401
    assert (
        "anonymous access not enabled. Please authenticate through one of the available "
        "methods: [API-keys]"
    ) in err.value.message
    with pytest.raises(UnexpectedStatusCodeError) as err:
        connect(dataclasses.replace(anonymous, api_key="not-the-key"))
    assert err.value.status_code == 401
    assert "unauthorized: invalid api key" in err.value.message

    # gRPC listens on every interface, so it is the port the key protects on a shared host.
    with (
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        pytest.raises(grpc.RpcError) as rpc_err,
    ):
        weaviate_pb2_grpc.WeaviateStub(channel).Search(
            search_get_pb2.SearchRequest(collection="Anything")
        )
    assert rpc_err.value.details() == "extract auth: unauthorized: invalid api key"

    with connect(server) as client:
        client.collections.create("Private", vector_config=Configure.Vectors.self_provided())
        assert list(client.collections.list_all(simple=True)) == ["Private"]


def test_without_a_key_configured_the_server_makes_one_and_keeps_it_for_its_owner_only(
    start_server: StartServer,
) -> None:
    server = start_server()
    key_file, password_file = server.api_key_file, server.root / "cluster-password"
    assert key_file == server.root / "api-key"
    assert [oct(f.stat().st_mode & 0o777) for f in (key_file, password_file)] == ["0o600"] * 2
    key, password = key_file.read_text().strip(), password_file.read_text().strip()
    assert len(key) >= 40 and len(password) >= 40 and key != password
    assert server.api_key == key == dataclasses.replace(server).api_key, "read, not made again"
    anonymous = dataclasses.replace(WeaviateTarget.of(server), api_key=None)
    with pytest.raises(UnexpectedStatusCodeError) as err:
        connect(anonymous)
    assert err.value.status_code == 401

    assert server.stop() is True
    assert server.start() is True
    with connect(server) as client:  # the same key after a restart
        assert client.is_ready()
    assert server.api_key_origin() == f"API key: generated, kept in {key_file}"
    shown = [repr(server), server.describe(), server.status(), server.api_key_origin(),
             server.log_file.read_text()]  # fmt: skip
    assert not [text for text in shown if key in text or password in text]
    assert server.hide_secrets(f"key {key}, password {password}") == "key ***, password ***"


def test_the_server_keeps_its_data_across_stop_and_start(start_server: StartServer) -> None:
    server = start_server()
    with connect(server) as client:
        words = client.collections.create(
            "Words",
            properties=[Property(name="word", data_type=DataType.TEXT)],
            vector_config=Configure.Vectors.self_provided(),
        )
        words.data.insert({"word": "kept"}, uuid=generate_uuid5("kept"), vector=[1.0, 0.0])
    assert server.stop() is True
    assert server.start() is True
    with connect(server) as client:
        kept = client.collections.get("Words").query.fetch_object_by_id(generate_uuid5("kept"))
        assert kept is not None and kept.properties == {"word": "kept"}


@pytest.mark.parametrize("port", ["http_port", "grpc_port"])
def test_a_port_taken_by_another_program_is_named(tmp_path: Path, port: str, monkeypatch) -> None:
    monkeypatch.setattr("resources.weaviate.server.PORT_RELEASE_SECONDS", 0.5)
    server = server_settings(tmp_path)
    taken = getattr(server, port)
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", taken))
        other_program.listen()
        with pytest.raises(ServerError) as err:
            server.start()
    assert str(err.value) == (
        f"cannot start {server.describe()}: port {taken} is taken by another program; "
        "choose other ports or stop it"
    )
    assert server.pid() is None and server_processes(server) == []


def test_a_stale_pid_file_never_names_another_program(tmp_path: Path) -> None:
    """After a reboot the recorded pid may belong to anything; stop() must not signal it."""
    server = server_settings(tmp_path)
    server.root.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen(["sleep", "600"])
    try:
        (server.root / "server.json").write_text(json.dumps({"pid": other.pid}))
        assert server.pid() is None
        assert server.status() == f"stopped: {server.describe()}"
        assert server.stop() is False
        assert other.poll() is None, "the other program still runs"
    finally:
        other.kill()
        other.wait()


def test_without_go_and_without_a_download_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(server_module.shutil, "which", lambda _: None)
    requested = []

    def offline(url: str, filename: object = None, *args: object) -> None:
        requested.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    expected = (
        f"no Weaviate server binary at {binary_path()}: Go is not installed (Go 1.26+ builds it "
        f"with `go install {GO_PACKAGE}@v{WEAVIATE_VERSION}`), and the release download failed "
        "(URLError: <urlopen error [Errno -3] Temporary failure in name resolution>). Install "
        "Go, or set WEAVIATE_URL to a running Weaviate"
    )
    with pytest.raises(ServerError) as err:
        install_binary(progress=lambda _: None)
    assert str(err.value) == expected
    [url] = requested
    assert url.startswith(
        f"https://github.com/weaviate/weaviate/releases/download/v{WEAVIATE_VERSION}/"
        f"weaviate-v{WEAVIATE_VERSION}-Linux-"
    )

    server = server_settings(tmp_path / "server")
    with pytest.raises(ServerError) as err:
        server.start(progress=lambda _: None)
    assert str(err.value) == expected
    assert server.pid() is None
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        f"install-v{WEAVIATE_VERSION}.lock"
    ], "no partial binary or scratch folder is left in the cache"


def test_a_server_that_exits_at_start_quotes_its_log(tmp_path: Path) -> None:
    server = server_settings(tmp_path, GRPC_PORT="notaport")
    try:
        with pytest.raises(ServerError) as err:
            server.start(progress=lambda _: None)
    finally:
        server.stop()
    message = str(err.value)
    assert message.startswith(
        f"{server.describe()} exited before it was ready; the end of its log ({server.log_file}):\n"
    )
    assert (
        'level=error msg="could not load config: invalid config: parse GRPC_PORT as int: '
        'strconv.Atoi: parsing \\"notaport\\": invalid syntax" action=startup' in message
    )
    assert server.status() == f"stopped: {server.describe()}"
    assert server_processes(server) == []
