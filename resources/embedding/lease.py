"""Which GPU a step embeds on: an exclusive lease per GPU, shared by every process of the host.

Dagster's `gpu` pool bounds how many steps embed at once (one slot per GPU), but not which GPU
each one takes: two steps that both picked `cuda:0` would share it while `cuda:1` idled. A lease
is an advisory lock (`flock`) on a file named for the GPU's UUID, so processes that number their
GPUs differently (CUDA_VISIBLE_DEVICES) still agree on which physical GPU is taken, and the
kernel drops the lock when its holder dies: a killed step never keeps a GPU. The file holds who
has it, so a step that waits can say for whom. No well-kept library does this for GPUs; a lock
file per device is the whole of it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from resources import settings

# How often a step that waits for a GPU looks again, and how often it says it still waits.
POLL_SECONDS = 1.0
REPORT_SECONDS = 60.0


def lease_dir() -> Path:
    """Where the leases live: one folder per host (GPUs are per host), EMBEDDING_LEASE_DIR or
    the temporary folder."""
    path = Path(settings.embedding_lease_dir())
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Gpu:
    """A GPU as this process names it (`cuda:1`) and as every process does (its UUID)."""

    device: str
    uuid: str


def visible_gpus() -> list[Gpu]:
    import torch

    gpus = []
    for index in range(torch.cuda.device_count()):
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        gpus.append(Gpu(f"cuda:{index}", f"GPU-{uuid}" if uuid else f"index-{index}"))
    return gpus


def _try_lock(path: Path, holder: str) -> IO[str] | None:
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"holder": holder, "pid": os.getpid(), "since": time.time()}))
    handle.flush()
    return handle


def _release(handle: IO[str]) -> None:
    handle.seek(0)
    handle.truncate()
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def holder_of(path: Path) -> str:
    """Who holds a lease, as its holder wrote it ("?" while it is being written)."""
    try:
        record = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return "?"
    if not record:
        return "nobody"
    return f"{record.get('holder', '?')} (pid {record.get('pid', '?')})"


@contextmanager
def leased(
    candidates: Sequence[Gpu],
    count: int,
    holder: str,
    log: Callable[[str], None],
    folder: Path | None = None,
) -> Iterator[list[Gpu]]:
    """Hold `count` of `candidates` alone for the block, waiting (asleep) while too few are free.

    Takes them in the candidates' order; a step that needs several takes all of them at once
    or none, so two such steps never each hold half and wait for the other.
    """
    if not 0 < count <= len(candidates):
        raise ValueError(f"cannot lease {count} of {len(candidates)} GPUs")
    folder = folder or lease_dir()
    started = time.monotonic()
    reported = 0.0
    while True:
        with ExitStack() as held:
            taken: list[Gpu] = []
            for gpu in candidates:
                handle = _try_lock(folder / f"{gpu.uuid}.lock", holder)
                if handle is None:
                    continue
                held.callback(_release, handle)
                taken.append(gpu)
                if len(taken) == count:
                    break
            if len(taken) == count:
                if reported:
                    log(f"GPU free after {time.monotonic() - started:.0f}s of waiting")
                yield taken
                return
        waited = time.monotonic() - started
        if not reported or waited - reported >= REPORT_SECONDS:
            holders = ", ".join(
                f"{gpu.device} by {holder_of(folder / f'{gpu.uuid}.lock')}" for gpu in candidates
            )
            log(f"waiting for {count} free GPU(s) of {len(candidates)}; held: {holders}")
            reported = max(waited, 1e-9)
        time.sleep(POLL_SECONDS)
