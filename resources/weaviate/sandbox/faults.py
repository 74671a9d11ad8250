"""Fault injection for the batch path, so ingest retry logic can be tested against failures.

The gRPC servicer asks `Faults.next_batch_failure()` before storing a batch; tests arm it
through `SandboxServer.faults`. Kept separate so that further faults (rejected objects,
latency) have one obvious home.
"""

from __future__ import annotations

import threading

import grpc


class Faults:
    """Thread-safe switches the servicer consults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batch_failures: list[tuple[grpc.StatusCode, str]] = []

    def fail_next_batches(
        self, count: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    ) -> None:
        """Answers the next `count` BatchObjects calls with `code` and stores nothing."""
        with self._lock:
            self._batch_failures.extend([(code, f"injected fault: {code.name}")] * count)

    def next_batch_failure(self) -> tuple[grpc.StatusCode, str] | None:
        with self._lock:
            return self._batch_failures.pop(0) if self._batch_failures else None

    def clear(self) -> None:
        """Disarms every fault, so a shared server starts the next test healthy."""
        with self._lock:
            self._batch_failures.clear()
