"""Processes: whether one still runs (read from /proc where there is one), and the CPUs this
one may use.

Shared by the managed Weaviate server (is the server of a pid file still up? how many shards
suit its CPUs?), the run liveness check (is the process that ran a Dagster run still there?),
the chunking and the embedding engine (how many workers?).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity (a device worker's share), not the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resident_bytes(pid: int) -> int:
    """The process's resident memory (VmRSS); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    if stat.rsplit(")", 1)[1].split()[0] != "Z":
        return True
    # A multithreaded process whose main thread exited shows as a zombie while its other
    # threads still run and hold its sockets: it is gone only when every thread is.
    return any(_thread_running(task) for task in Path(f"/proc/{pid}/task").glob("*"))


def _thread_running(task: Path) -> bool:
    try:
        return (task / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def process_started(pid: int) -> float | None:
    """When `pid` started, in seconds since the epoch (None without /proc or the process).

    With the pid, it names a process for good: a pid is reused once its process is gone, but
    the new process started later.
    """
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    booted = time.time() - uptime
    return booted + ticks / os.sysconf("SC_CLK_TCK")
