"""Corpus files read by worker processes, their ids written to the registry in corpus order."""

from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from resources.corpus.ids import IdRegistryWriter
from resources.corpus.reader import ShardSpec, scan_file


class ParallelScans:
    """Reads corpus files in worker processes while the registry is written in corpus order.

    Each worker writes one file's ids to a registry of its own, which `result` copies in; the
    files are handed out at once and taken back in order, so ownership is what one pass in
    order gives. Starting processes costs about a second, so by default they are used only when
    at least `PARALLEL_BYTES` are to be read; otherwise, and with `workers=1`, `result` reads the
    file itself, streaming its ids into the writer.
    """

    PARALLEL_BYTES = 256 << 20

    def __init__(
        self,
        stamps: dict[str, str],
        corpus_path: str,
        shard_size: int,
        folder: Path,
        workers: int | None = None,
    ):
        self.corpus_path, self.shard_size = corpus_path, shard_size
        if workers is None:
            sizes = [stamp.split(":", 1)[0] for stamp in stamps.values()]
            size = sum(int(part) for part in sizes if part.isdigit())  # "None": size unknown
            workers = (os.cpu_count() or 1) if size >= self.PARALLEL_BYTES else 1
        workers = min(workers, len(stamps))
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, tuple[Path, Future[list[ShardSpec]]]] = {}
        if workers > 1:
            folder.mkdir(parents=True, exist_ok=True)
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
            for n, source in enumerate(stamps):
                path = folder / f".scan-{os.getpid()}-{n}.sqlite"
                future = self._pool.submit(_scan_alone, source, corpus_path, shard_size, path)
                self._futures[source] = (path, future)

    def result(self, source: str, writer: IdRegistryWriter) -> list[ShardSpec]:
        """The file's shards, its ids added to `writer`; raises what reading the file raised."""
        if source not in self._futures:
            writer.begin_file(source)
            try:
                specs = list(scan_file(source, self.corpus_path, self.shard_size, writer.add))
            except BaseException:
                writer.end_file(keep=False)
                raise
            writer.end_file(keep=True)
            return specs
        path, future = self._futures[source]
        try:
            specs = future.result()
        except BrokenProcessPool as exc:
            raise RuntimeError(
                f"the worker process reading {source} ended abruptly (killed, or out of memory)"
            ) from exc
        writer.copy_file(source, path)
        path.unlink()
        return specs

    def __enter__(self) -> ParallelScans:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        for path, _ in self._futures.values():
            path.unlink(missing_ok=True)


def _scan_alone(source: str, corpus_path: str, shard_size: int, path: Path) -> list[ShardSpec]:
    """A worker's part: one file's shards, its ids in a registry of its own at `path`."""
    writer = IdRegistryWriter(path)
    try:
        writer.begin_file(source)
        specs = list(scan_file(source, corpus_path, shard_size, writer.add))
        writer.end_file(keep=True)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return specs
