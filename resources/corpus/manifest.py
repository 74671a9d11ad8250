"""The shard manifest: which records of which file make up each partition.

Registering shards scans the corpus once and saves this list; each partition run then reads just
its own byte or row range. The manifest lives in the data directory and is replaced atomically.

It also records each file's stamp (size and modification time) as scanned, so the next
registration reads only files whose stamp changed: at 1.25M documents a full scan reads 8.7 GB
(over half a minute of one core), a registration of an unchanged corpus only lists the files.
`rescan` reads every file regardless, for filesystems whose modification times are too coarse
to trust.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from resources.corpus.ids import IdRegistryWriter, has_occurrences, registry_path
from resources.corpus.parallel_scan import ParallelScans
from resources.corpus.reader import ShardSpec, compressed_corpus_files, file_name, stat_corpus
from resources.corpus.records import Reject
from resources.files import write_lines, write_text_atomic


def manifest_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "manifest" / "shards.json"


def write_manifest(
    data_dir: str | Path,
    corpus_path: str,
    shard_size: int,
    shards: Iterable[ShardSpec],
    files: dict[str, str] | None = None,
    duplicate_ids: int = 0,
) -> Path:
    """`files`: the stamps of the files whose shards are listed, as they were scanned."""
    path = manifest_path(data_dir)
    body = {
        "corpus_path": corpus_path,
        "shard_size": shard_size,
        "files": files or {},
        "duplicate_ids": duplicate_ids,
        "shards": [spec.to_dict() for spec in shards],
    }
    write_text_atomic(path, json.dumps(body, indent=1) + "\n")
    return path


def manifest_stamp(data_dir: str | Path) -> str | None:
    """Tells one written manifest from the next without reading it; None when there is none."""
    path = manifest_path(data_dir)
    if not path.is_file():
        return None
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def load_manifest(data_dir: str | Path) -> dict[str, ShardSpec]:
    path = manifest_path(data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no shard manifest at {path}: run the register_shards job first")
    body = json.loads(path.read_text())
    return {item["key"]: ShardSpec(**item) for item in body["shards"]}


class UnknownShardError(KeyError):
    """A partition whose shard the last registration did not find: retrying cannot help."""

    def __str__(self) -> str:
        return str(self.args[0])


def shard_spec(data_dir: str | Path, key: str) -> ShardSpec:
    shards = load_manifest(data_dir)
    if key not in shards:
        raise UnknownShardError(
            f"shard {key!r} is not in the manifest {manifest_path(data_dir)}: its input is gone "
            "or was cut into other shards since it was registered. Run register_shards if the "
            "corpus changed; the remove_shards job (or `weaviate-indexer index "
            "--remove-missing`) deletes shards whose input is gone"
        )
    return shards[key]


def problems_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "manifest" / "problems.jsonl"


@dataclass
class CorpusScan:
    """`reused_files`: files found unchanged, whose shards and ids came from the last scan."""

    shards: list[ShardSpec] = field(default_factory=list)
    problems: list[Reject] = field(default_factory=list)
    files: int = 0
    duplicate_ids: int = 0
    reused_files: int = 0

    @property
    def records(self) -> int:
        return sum(spec.records for spec in self.shards)


class CorpusFileError(ValueError):
    """Raised in strict mode for a corpus file that cannot be read or holds no record."""


def register_corpus(
    corpus_path: str,
    shard_size: int,
    data_dir: str | Path,
    strict: bool = False,
    rescan: bool = False,
    workers: int | None = None,
) -> CorpusScan:
    """Scan the corpus: save the shard manifest, the id registry and the file problems.

    Files whose stamp matches the last registration's (same corpus path and shard size) are not
    read again. A file that cannot be read (a truncated Parquet file, say), a compressed one or
    one that holds no record is listed in `manifest/problems.jsonl` and skipped, unless
    `strict`, when it fails the registration; such files are read again each time. `workers`:
    processes that read files at once (default: one per core when there is enough to read, see
    `ParallelScans`).
    """
    stamps = stat_corpus(corpus_path)
    compressed = _compressed_problems(corpus_path, strict)
    previous, duplicates = {}, 0
    if not rescan:
        previous, duplicates = _previous_files(data_dir, corpus_path, shard_size)
    unchanged = {s: specs for s, (stamp, specs) in previous.items() if stamps.get(s) == stamp}
    if (
        unchanged
        and list(unchanged) == list(previous) == list(stamps)
        and not compressed
        and not _had_problems(data_dir)
    ):
        # Nothing to write: the manifest and registry on disk are this scan's.
        shards = [spec for specs in unchanged.values() for spec in specs]
        return CorpusScan(shards, [], len(stamps), duplicates, reused_files=len(stamps))
    registry = registry_path(data_dir)
    to_read = {source: stamp for source, stamp in stamps.items() if source not in unchanged}
    scan = CorpusScan(problems=compressed)
    scanned: dict[str, str] = {}
    writer = IdRegistryWriter(registry)
    try:
        with ParallelScans(to_read, corpus_path, shard_size, registry.parent, workers) as reads:
            for source, stamp in stamps.items():
                scan.files += 1
                if source in unchanged:
                    writer.copy_file(source, registry)
                    scan.shards += unchanged[source]
                    scan.reused_files += 1
                    scanned[source] = stamp
                    continue
                try:
                    specs = reads.result(source, writer)
                except (ValueError, OSError) as exc:
                    if strict:
                        raise CorpusFileError(f"{file_name(source)}: {exc}") from exc
                    scan.problems.append(Reject(file_name(source), f"file skipped: {exc}"))
                    continue
                if not specs:
                    if strict:
                        raise CorpusFileError(f"{file_name(source)}: file has no records")
                    scan.problems.append(Reject(file_name(source), "file has no records"))
                    continue
                scan.shards += specs
                scanned[source] = stamp
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    scan.duplicate_ids = writer.duplicates
    write_manifest(data_dir, corpus_path, shard_size, scan.shards, scanned, scan.duplicate_ids)
    write_lines(problems_path(data_dir), [p.as_json() for p in scan.problems])
    return scan


def _compressed_problems(corpus_path: str, strict: bool) -> list[Reject]:
    """A problem for each compressed corpus file, which is never read (see
    `compressed_corpus_files`); in strict mode, the first one fails the registration."""
    problems = []
    for source in compressed_corpus_files(corpus_path):
        reason = (
            "compressed files are not read (a shard is read by seeking to it); store it "
            "uncompressed as .jsonl or .parquet"
        )
        if strict:
            raise CorpusFileError(f"{file_name(source)}: {reason}")
        problems.append(Reject(file_name(source), f"file skipped: {reason}"))
    return problems


def _had_problems(data_dir: str | Path) -> bool:
    return problems_path(data_dir).is_file()  # written only when there are problems


def _previous_files(
    data_dir: str | Path, corpus_path: str, shard_size: int
) -> tuple[dict[str, tuple[str, list[ShardSpec]]], int]:
    """Each file of the last registration with its stamp and shards, where they can be reused,
    and the repeated ids that registration counted."""
    path = manifest_path(data_dir)
    if not path.is_file() or not has_occurrences(registry_path(data_dir)):
        return {}, 0
    body = json.loads(path.read_text())
    if body["corpus_path"] != corpus_path or body["shard_size"] != shard_size:
        return {}, 0
    files: dict[str, tuple[str, list[ShardSpec]]] = {}
    for source, stamp in body.get("files", {}).items():
        # A stamp without a modification time cannot tell an edited file from the same one.
        if not stamp.endswith(":"):
            files[source] = (stamp, [])
    for item in body["shards"]:
        if item["source"] in files:
            files[item["source"]][1].append(ShardSpec(**item))
    return files, body["duplicate_ids"]
