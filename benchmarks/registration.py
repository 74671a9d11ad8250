"""Shard registration: a full scan in one process, in worker processes, and the incremental cases.

    python benchmarks/registration.py --docs 100000 [--out DIR] [--workers N]

Writes (or reuses) the first --docs documents of the reference corpus, then registers them with
1,000-document shards, each row in the same invocation:

- `full scan, one process`: every file read in this process (what registration did before it
  kept file stamps and read files in worker processes); the baseline.
- `full scan, N processes`: every file read, by worker processes.
- `unchanged corpus`: a registration after the one before, nothing changed (a schedule's tick).
- `one file changed`: one document appended to the first file.

Each row is the best of --repeat.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.corpus.manifest import register_corpus  # noqa: E402
from resources.corpus.reader import list_corpus_files  # noqa: E402
from resources.corpus.sample import SampleSpec, write_sample_corpus  # noqa: E402

SHARD_SIZE = 1000


def best_of(repeat: int, call) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - began)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=None, help="corpus folder (kept if given)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="registration-"))
    corpus = args.out or scratch / "corpus"
    if not list(corpus.glob("*.jsonl")):
        write_sample_corpus(corpus, SampleSpec(docs=args.docs), workers=os.cpu_count() or 1)
    files = list_corpus_files(str(corpus))
    size = sum(Path(f).stat().st_size for f in files)
    data = scratch / "data"

    def register(**options):
        return register_corpus(str(corpus), SHARD_SIZE, data, **options)

    rows = []
    seconds, scan = best_of(args.repeat, lambda: register(rescan=True, workers=1))
    rows.append(("full scan, one process", seconds, scan))
    seconds, scan = best_of(args.repeat, lambda: register(rescan=True, workers=args.workers))
    rows.append((f"full scan, {args.workers} processes", seconds, scan))
    seconds, scan = best_of(args.repeat, register)
    rows.append(("unchanged corpus", seconds, scan))
    changed = []
    for n in range(args.repeat):
        with open(files[0], "a") as handle:
            handle.write(f'{{"id": "appended-{time.time_ns()}-{n}", "text": "one more"}}\n')
        changed.append(best_of(1, register))
    seconds, scan = min(changed, key=lambda pair: pair[0])
    rows.append(("one file changed", seconds, scan))

    baseline = rows[0][1]
    print(f"{scan.records:,} documents, {len(files)} files, {size / 2**20:,.0f} MiB, "
          f"{len(scan.shards):,} shards; {os.cpu_count()} cores")  # fmt: skip
    print("| registration | files read | seconds | MiB/s read | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, scan in rows:
        read = scan.files - scan.reused_files
        mib = size / 2**20 * read / len(files)
        print(f"| {name} | {read} | {seconds:.3f} | {mib / seconds:,.0f} | "
              f"{baseline / seconds:,.1f}x |")  # fmt: skip
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
