"""Faults a real server cannot produce on demand, injected into a real client's gRPC channel.

`GrpcFaults.install(client)` routes the client's calls through an interceptor that can fail the
next batch (or batch delete) calls with a status code, refuse batches over a size as too large,
hold a batch call until released, and count batch calls. Everything else reaches the real
server.
"""

from __future__ import annotations

import threading

import grpc
import weaviate
from weaviate.proto.v1 import weaviate_pb2_grpc

_BATCH = "/weaviate.v1.Weaviate/BatchObjects"
_DELETE = "/weaviate.v1.Weaviate/BatchDelete"


class InjectedError(grpc.RpcError, grpc.Call):
    """What a failed call raises in grpc: an RpcError that is also the call, with its code."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self):
        return None

    def trailing_metadata(self):
        return None

    def is_active(self) -> bool:
        return False

    def time_remaining(self):
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False


class GrpcFaults(grpc.UnaryUnaryClientInterceptor):
    def __init__(self) -> None:
        self.batch_calls = 0
        self._failures: dict[str, list[grpc.StatusCode]] = {_BATCH: [], _DELETE: []}
        self.max_objects: int | None = None
        self.hold_at: int | None = None  # the batch call (1-based) that waits for `release`
        self.held = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def install(self, client: weaviate.WeaviateClient) -> GrpcFaults:
        connection = client._connection
        channel = grpc.intercept_channel(connection._grpc_channel, self)
        connection._grpc_stub = weaviate_pb2_grpc.WeaviateStub(channel)
        return self

    def fail_next_batches(self, count: int, code: grpc.StatusCode) -> None:
        with self._lock:
            self._failures[_BATCH] += [code] * count

    def fail_next_deletes(self, count: int, code: grpc.StatusCode) -> None:
        with self._lock:
            self._failures[_DELETE] += [code] * count

    def intercept_unary_unary(self, continuation, client_call_details, request):
        method = client_call_details.method
        if method in self._failures:
            with self._lock:
                if method == _BATCH:
                    self.batch_calls += 1
                call = self.batch_calls
                failures = self._failures[method]
                failure = failures.pop(0) if failures else None
            if failure is not None:
                raise InjectedError(failure, f"injected {failure.name}")
        if method == _BATCH:
            if self.max_objects is not None and len(request.objects) > self.max_objects:
                raise InjectedError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"grpc: received message larger than max ({len(request.objects)} objects)",
                )
            if call == self.hold_at:
                self.held.set()
                self.release.wait()
        return continuation(client_call_details, request)
