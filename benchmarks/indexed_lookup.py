"""What the schedule and sensor pay to learn what is indexed, as the instance's history grows.

    python benchmarks/indexed_lookup.py --shards 400 --nights 15 [--instance DIR]

Builds (or reuses, with --instance) a Dagster instance on disk where each of --shards shards
was read and indexed --nights times, as a nightly re-index leaves it, then times
`indexed_hashes` over all shards (best of --repeat). Run it at two commits on the same
--instance to compare them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from dagster import AssetMaterialization, DagsterInstance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestration.indexed import indexed_hashes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=400)
    parser.add_argument("--nights", type=int, default=15)
    parser.add_argument("--instance", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    folder = args.instance or Path(tempfile.mkdtemp(prefix="indexed-"))
    folder.mkdir(parents=True, exist_ok=True)
    written = folder / "history-written"
    instance = DagsterInstance.local_temp(str(folder))
    keys = [f"part-s{i:05d}" for i in range(args.shards)]
    if not written.exists():
        for night in range(args.nights):
            for key in keys:
                metadata = {"source_content_hash": f"{night}-{key}"}
                instance.report_runless_asset_event(
                    AssetMaterialization("corpus_shard", partition=key, metadata=metadata)
                )
                instance.report_runless_asset_event(
                    AssetMaterialization("weaviate_index", partition=key)
                )
        written.write_text(f"{args.shards} shards, {args.nights} nights\n")
    current = dict.fromkeys(keys, "")
    best = float("inf")
    for _ in range(args.repeat):
        began = time.perf_counter()
        hashes = indexed_hashes(instance, current)
        best = min(best, time.perf_counter() - began)
    assert all(hashes[key] == f"{args.nights - 1}-{key}" for key in keys)
    print(f"{written.read_text().strip()}: indexed_hashes over all shards {best:.3f} s")


if __name__ == "__main__":
    main()
