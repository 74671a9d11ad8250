"""Nothing the managed server or a cluster node listens on answers another host without
credentials.

Requests go to an address of this machine that is not loopback, where another host's arrive,
and carry no credentials. Every port the server listens on is accounted for: those bound to
127.0.0.1 refuse the connection; those Weaviate binds on every interface (its gRPC API and the
cluster data API, which it has no address setting for) refuse the request.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from weaviate.classes.config import Configure, DataType, Property
from weaviate.proto.v1 import batch_pb2, search_get_pb2
from weaviate.util import generate_uuid5

from resources.weaviate.cluster import LocalCluster
from resources.weaviate.server import LocalServer
from tests.conftest import connect, managed_settings

REFUSED = "connection refused"
# Weaviate 1.39.3 answers an API call without a key with gRPC status UNKNOWN, not UNAUTHENTICATED:
# its handlers return the authentication error as a plain error (adapters/handlers/grpc/v1).
NO_KEY = "UNKNOWN (extract auth: unauthorized: invalid api key)"
# What each port answers a request without credentials from another host.
EXPECTED = {
    "HTTP": REFUSED,
    "gRPC": f"Search {NO_KEY}, BatchObjects {NO_KEY}",
    "gossip": REFUSED,
    "data": "GET 401, DELETE 401, FetchObject UNAUTHENTICATED (missing or invalid auth header)",
    "Raft": REFUSED,
    "Raft RPC": REFUSED,
}
TEXT = "a private text"
VECTOR = [0.6, 0.8]


@dataclass(frozen=True)
class Stored:
    """One object the test stored, and where: the server, its collection and shard."""

    server: LocalServer
    collection: str
    shard: str
    uuid: str


def non_loopback_address() -> str:
    """An IPv4 address of this machine other than loopback. Without one the test cannot reach
    the server as another host would, so it fails rather than pass without checking."""
    with contextlib.suppress(OSError):
        listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout
        for address in listed.split():
            if "." in address and not ipaddress.ip_address(address).is_loopback:
                return address
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("192.0.2.1", 9))  # sends nothing: picks the address a packet would leave by
        address = udp.getsockname()[0]
        if not ipaddress.ip_address(address).is_loopback:
            return address
    pytest.fail(
        "this machine has no IPv4 address besides loopback (`hostname -I` lists none, and no "
        "route leaves it): the test needs one to reach the server as another host would"
    )


def _decode_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/{tcp,udp}{,6} writes it: 32-bit words in host byte order."""
    words = [bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8)]
    return ipaddress.ip_address(b"".join(words))


def bound(pid: int, protocol: str) -> dict[int, str]:
    """The TCP ports `pid` listens on, or the UDP ports it is bound to, with their addresses."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = {}
    for table in (f"/proc/net/{protocol}", f"/proc/net/{protocol}6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            listening = protocol == "udp" or fields[3] == "0A"
            if fields[9] in inodes and listening:
                found[int(port, 16)] = str(_decode_address(address))
    return found


def ports(server: LocalServer) -> dict[str, int]:
    gossip = server.cluster_port
    return {"HTTP": server.http_port, "gRPC": server.grpc_port, "gossip": gossip,
            "data": gossip + 1, "Raft": gossip + 2, "Raft RPC": gossip + 3}  # fmt: skip


def _connects(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex((address, port)) == 0


def http_status(url: str, method: str = "GET") -> int:
    """The status of a request without credentials, past any proxy the environment sets."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def grpc_code(address: str, port: int, method: str, request: bytes) -> str:
    """The status name of a gRPC call without credentials."""
    options = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(f"{address}:{port}", options=options) as channel:
        try:
            channel.unary_unary(method)(request, timeout=10)
        except grpc.RpcError as err:
            return f"{err.code().name} ({err.details()})"
    return "OK"


def _api(stored: Stored, address: str, port: int) -> str:
    """The gRPC API: a search of the collection (a read) and an object overwritten (a write)."""
    search = search_get_pb2.SearchRequest(collection=stored.collection, limit=10, uses_127_api=True)
    properties = Struct()
    properties.update({"text": "overwritten"})
    overwrite = batch_pb2.BatchObjectsRequest(objects=[batch_pb2.BatchObject(
        uuid=stored.uuid, collection=stored.collection,
        properties=batch_pb2.BatchObject.Properties(non_ref_properties=properties),
    )])  # fmt: skip
    service = "/weaviate.v1.Weaviate"
    read = grpc_code(address, port, f"{service}/Search", search.SerializeToString())
    write = grpc_code(address, port, f"{service}/BatchObjects", overwrite.SerializeToString())
    return f"Search {read}, BatchObjects {write}"


def _cluster_api(stored: Stored, address: str, port: int) -> str:
    """The cluster data API: the object read (the query asks for its text and vector) and
    deleted over HTTP, and the replicas' gRPC service."""
    url = (
        f"http://{address}:{port}/indices/{stored.collection}/shards/{stored.shard}/objects/"
        f"{stored.uuid}"
    )
    every_property = f"additional={_base64('{}')}&selectProperties={_base64('[]')}"
    get, delete = http_status(f"{url}?{every_property}"), http_status(url, "DELETE")
    fetch = grpc_code(address, port, "/clusterapi.ReplicationService/FetchObject", b"")
    return f"GET {get}, DELETE {delete}, FetchObject {fetch}"


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _rest(stored: Stored, address: str, port: int) -> str:
    return f"GET /v1/objects {http_status(f'http://{address}:{port}/v1/objects')}"


def _internal(stored: Stored, address: str, port: int) -> str:
    return "accepts the connection, with no credentials to ask for"


PROBES: dict[str, Callable[[Stored, str, int], str]] = {
    "HTTP": _rest, "gRPC": _api, "gossip": _internal, "data": _cluster_api,
    "Raft": _internal, "Raft RPC": _internal,
}  # fmt: skip


def answers(stored: Stored, address: str) -> dict[str, str]:
    """What each port answers a request without credentials sent to `address`."""
    return {
        role: PROBES[role](stored, address, port) if _connects(address, port) else REFUSED
        for role, port in ports(stored.server).items()
    }


def store_one(server: LocalServer, collection: str, **options: object) -> Stored:
    """A collection of one shard holding one object, written with the server's credentials."""
    uuid = str(generate_uuid5(collection))
    with connect(server) as client:
        created = client.collections.create(
            collection,
            properties=[Property(name="text", data_type=DataType.TEXT)],
            vector_config=Configure.Vectors.self_provided(),
            sharding_config=Configure.sharding(desired_count=1),
            **options,
        )
        created.data.insert({"text": TEXT}, uuid=uuid, vector=VECTOR)
        [shard] = created.config.get_shards()
    return Stored(server, collection, shard.name, uuid)


def assert_refused_and_intact(stored: Stored) -> None:
    """Every port the server listens on refuses a request without credentials from another
    host, the REST API refuses one on loopback too, and the object is as it was stored."""
    pid = stored.server.pid()
    assert pid is not None
    listening = bound(pid, "tcp")
    assert set(listening) == set(ports(stored.server).values()), (
        f"the server listens on {listening}; every port must be accounted for here"
    )
    assert {ipaddress.ip_address(a).is_loopback for a in bound(pid, "udp").values()} == {True}

    assert answers(stored, non_loopback_address()) == EXPECTED
    rest = f"http://127.0.0.1:{stored.server.http_port}/v1/objects"
    assert http_status(rest) == 401, "a user of this machine needs the key as well"

    with connect(stored.server) as client:
        collection = client.collections.get(stored.collection)
        kept = collection.query.fetch_object_by_id(stored.uuid, include_vector=True)
        assert collection.aggregate.over_all(total_count=True).total_count == 1
    assert kept is not None and kept.properties == {"text": TEXT}
    assert kept.vector["default"] == pytest.approx(VECTOR)


@pytest.fixture
def managed_server(tmp_path: Path) -> Iterator[LocalServer]:
    """The server `WEAVIATE_MODE=managed` runs, with its defaults (no WEAVIATE_API_KEY), on
    ports free now."""
    server = managed_settings(tmp_path).managed_server()
    server.start()
    yield server
    server.stop()


def test_nothing_of_the_managed_server_answers_another_host_without_credentials(
    managed_server: LocalServer,
) -> None:
    assert_refused_and_intact(store_one(managed_server, "Chunks"))


def test_nothing_of_a_cluster_node_answers_another_host_without_credentials(
    weaviate_cluster: LocalCluster,
) -> None:
    entry, node = weaviate_cluster.nodes[:2]
    stored = store_one(entry, "Exposed", replication_config=Configure.replication(factor=3))
    try:
        assert_refused_and_intact(Stored(node, stored.collection, stored.shard, stored.uuid))
    finally:
        with connect(entry) as client:
            client.collections.delete(stored.collection)
