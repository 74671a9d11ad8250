"""The shard manifest: which records of which file make up each partition.

Registering shards scans the corpus once and saves this list; each partition run then reads just
its own byte or row range. The manifest lives in the data directory and is replaced atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from resources.corpus.ids import IdRegistryWriter, registry_path
from resources.corpus.reader import ShardSpec, file_name, list_corpus_files, scan_file
from resources.corpus.records import Reject
from resources.files import write_lines, write_text_atomic


def manifest_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "manifest" / "shards.json"


def write_manifest(
    data_dir: str | Path, corpus_path: str, shard_size: int, shards: Iterable[ShardSpec]
) -> Path:
    path = manifest_path(data_dir)
    body = {
        "corpus_path": corpus_path,
        "shard_size": shard_size,
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


def shard_spec(data_dir: str | Path, key: str) -> ShardSpec:
    shards = load_manifest(data_dir)
    if key not in shards:
        raise KeyError(
            f"shard {key!r} is not in the manifest {manifest_path(data_dir)}: the corpus changed "
            f"since it was registered; run the register_shards job again"
        )
    return shards[key]


def problems_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "manifest" / "problems.jsonl"


@dataclass
class CorpusScan:
    shards: list[ShardSpec] = field(default_factory=list)
    problems: list[Reject] = field(default_factory=list)
    files: int = 0
    duplicate_ids: int = 0

    @property
    def records(self) -> int:
        return sum(spec.records for spec in self.shards)


def register_corpus(
    corpus_path: str, shard_size: int, data_dir: str | Path, strict: bool = False
) -> CorpusScan:
    """Scan the corpus once: save the shard manifest, the id registry and the file problems.

    A file that cannot be read (a truncated Parquet file, say) or holds no record is listed in
    `manifest/problems.jsonl` and skipped, unless `strict`, when it fails the registration.
    """
    scan = CorpusScan()
    writer = IdRegistryWriter(registry_path(data_dir))
    try:
        for source in list_corpus_files(corpus_path):
            scan.files += 1
            writer.begin_file()
            try:
                specs = list(scan_file(source, corpus_path, shard_size, writer.add))
            except (ValueError, OSError) as exc:
                writer.end_file(keep=False)
                if strict:
                    raise
                scan.problems.append(Reject(file_name(source), f"file skipped: {exc}"))
                continue
            writer.end_file(keep=True)
            if not specs:
                scan.problems.append(Reject(file_name(source), "file has no records"))
            scan.shards += specs
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    scan.duplicate_ids = writer.duplicates
    write_manifest(data_dir, corpus_path, shard_size, scan.shards)
    write_lines(problems_path(data_dir), [p.as_json() for p in scan.problems])
    return scan
