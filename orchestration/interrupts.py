"""Ctrl-C and SIGTERM for a long command: the first asks it to stop cleanly, a second ends it.

A terminal sends SIGINT to the command's whole process group, a pod's runtime sends SIGTERM.
The first of either stops new work and lets the work in progress end at its next safe point
(`on_stop`); the command then says how to resume and exits 130 (143 for SIGTERM). A second
ends the command at once (`on_kill` first): what it leaves running, the next command cleans up.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """Installed while the command runs (a context manager); `received` is the first signal."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.on_stop: Callable[[], None] = lambda: None
        self.on_kill: Callable[[], None] = lambda: None
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int:
        return 128 + (self.received or 0)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            print(
                f"\n{signal.Signals(signum).name}: stopping; no new run starts, runs in progress "
                "end at their next step (Ctrl-C again to stop at once)",
                file=sys.stderr,
                flush=True,
            )
            self.on_stop()
            return
        self.on_kill()
        os._exit(self.exit_code)

    def __enter__(self) -> Interrupts:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
