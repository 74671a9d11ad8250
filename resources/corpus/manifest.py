"""The shard manifest: which records of which file make up each partition.

Registering shards scans the corpus once and saves this list; each partition run then reads just
its own byte or row range. The manifest lives in the data directory and is replaced atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from resources.corpus.reader import ShardSpec
from resources.files import write_text_atomic


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
