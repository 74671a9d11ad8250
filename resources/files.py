"""Atomic file writes: a file that exists under its final name is always complete.

Every stage's output (normalized shards, chunks, vectors, manifests) is a checkpoint a later run
may trust, so a process killed mid-write must leave at most a temporary file behind, never a
truncated file under the real name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; on success it replaces `path` in one rename."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_lines(path: str | Path, lines: list[str]) -> None:
    """A file of lines, atomically; an earlier file is removed when there are none."""
    if not lines:
        Path(path).unlink(missing_ok=True)
        return
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def count_lines(path: str | Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0
