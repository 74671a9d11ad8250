"""Fault injection for the batch path, so ingest retry logic can be tested against failures.

The gRPC servicer consults `Faults` on every BatchObjects call; tests arm it through
`SandboxServer.faults`: fail the next calls with a gRPC status, refuse chosen objects, slow
every call down. It also counts the calls, so a test can prove that a run wrote nothing.
Stopping and restarting the server (`SandboxServer.stop()` / `start()`, same ports, same data
directory) covers a server restart in the middle of an ingest.
"""

from __future__ import annotations

import threading

import grpc


class Faults:
    """Thread-safe switches the servicer consults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batch_failures: list[tuple[grpc.StatusCode, str]] = []
        self._rejected: dict[str, str] = {}
        self.latency_seconds = 0.0
        self.batch_calls = 0

    def fail_next_batches(
        self, count: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    ) -> None:
        """Answers the next `count` BatchObjects calls with `code` and stores nothing."""
        with self._lock:
            self._batch_failures.extend([(code, f"injected fault: {code.name}")] * count)

    def reject_objects(self, uuids: set[str], message: str = "injected rejection") -> None:
        """Refuses these objects with a per-object error, in every batch, until cleared."""
        with self._lock:
            self._rejected.update(dict.fromkeys(uuids, message))

    def delay_batches(self, seconds: float) -> None:
        """Every BatchObjects call waits this long before it is served."""
        self.latency_seconds = seconds

    def next_batch_failure(self) -> tuple[grpc.StatusCode, str] | None:
        """Called once per BatchObjects call: counts it and returns its injected failure."""
        with self._lock:
            self.batch_calls += 1
            return self._batch_failures.pop(0) if self._batch_failures else None

    def rejection(self, uuid: str) -> str | None:
        with self._lock:
            return self._rejected.get(uuid)

    def clear(self) -> None:
        """Disarms every fault, so a shared server starts the next test healthy."""
        with self._lock:
            self._batch_failures.clear()
            self._rejected.clear()
            self.latency_seconds = 0.0
