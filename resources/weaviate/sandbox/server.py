"""Starting and stopping the sandbox: an HTTP server and a gRPC server over one store.

Both listen on the loopback interface only. Port 0 picks a free port; the chosen ports are
readable after `start()`, which is what lets parallel test sessions run side by side.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent import futures
from http.server import ThreadingHTTPServer
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from weaviate.proto.v1 import weaviate_pb2_grpc

from resources.weaviate.sandbox.faults import Faults
from resources.weaviate.sandbox.grpc_service import WeaviateService
from resources.weaviate.sandbox.rest import GRPC_MAX_MESSAGE_SIZE, RestApi, make_http_server
from resources.weaviate.sandbox.store import Store

# A test double has no authentication: it must not be reachable from other machines.
_LOOPBACK = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1"}


class SandboxServer:
    """A Weaviate-protocol server in this process, for tests and offline runs.

    `faults` is shared with the gRPC service so tests can make batch calls fail on purpose.
    `discard_batches` accepts batch objects without decoding or storing them (`discarded()`
    counts them), so that a benchmark of the ingest client measures the client alone.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        http_port: int = 0,
        grpc_port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        discard_batches: bool = False,
    ) -> None:
        if host not in _LOOPBACK:
            raise ValueError(f"the sandbox listens on the loopback interface only, not {host!r}")
        self.host = _LOOPBACK[host]
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.data_dir = data_dir
        self.faults = Faults()
        self.discard_batches = discard_batches
        self._service: WeaviateService | None = None
        self.store: Store | None = None
        self._grpc: grpc.Server | None = None
        self._http_thread: threading.Thread | None = None
        self._http: ThreadingHTTPServer | None = None

    def start(self) -> SandboxServer:
        """Loads the data directory and starts serving; returns at once."""
        if self._grpc is not None:
            raise RuntimeError("the sandbox server is already running")
        store = Store(self.data_dir)
        options = [
            ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_SIZE),
            ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_SIZE),
        ]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
        self._service = WeaviateService(store, self.faults, self.discard_batches)
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(self._service, server)
        health_servicer = health.HealthServicer()
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        grpc_port = server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        if grpc_port == 0:
            store.close()
            raise OSError(f"cannot bind the gRPC port {self.grpc_port} on {self.host}")
        api = RestApi(store, hostname="")
        try:
            http = make_http_server(self.host, self.http_port, api)
        except OSError:
            store.close()
            raise
        self.http_port = http.server_address[1]
        self.grpc_port = grpc_port
        api.hostname = f"http://{self.host}:{self.http_port}"
        server.start()
        thread = threading.Thread(target=http.serve_forever, name="sandbox-http", daemon=True)
        thread.start()
        self.store, self._grpc, self._http, self._http_thread = store, server, http, thread
        return self

    def discarded(self) -> int:
        """Batch objects accepted unread in discard mode since the start."""
        return self._service.discarded if self._service is not None else 0

    def stop(self) -> None:
        """Stops both servers and closes the logs; the data directory stays for a restart."""
        if self._grpc is None:
            return
        assert self._http is not None
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=None).wait()
        assert self.store is not None
        self.store.close()
        self._grpc = self._http = self._http_thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    http_port: int,
    grpc_port: int,
    data_dir: str | None,
    host: str = "127.0.0.1",
    discard_batches: bool = False,
) -> None:
    """Runs the sandbox until SIGTERM or SIGINT, then stops it cleanly (for the CLI)."""
    done = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        with SandboxServer(host, http_port, grpc_port, data_dir, discard_batches) as srv:
            print(
                f"Weaviate sandbox: http://{host}:{srv.http_port} grpc {host}:{srv.grpc_port}"
                f" data {data_dir or '(in memory)'}",
                flush=True,
            )
            done.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
