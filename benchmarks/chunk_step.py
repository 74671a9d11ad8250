"""The chunks step as a backfill runs it: shards/s with its shards cut one after another in the
run's process, against `CHUNK_PROCESSES` worker processes, for one run alone and for a wave of
runs chunking at once on the same machine.

    python benchmarks/chunk_step.py [--shards-per-run 8] [--concurrent-runs 1,8] [--processes 1,4]

Each run is its own process (as a backfill's runs are) calling the asset's `for_each_shard` with
the asset's `ShardChunker` at `CPU_STAGE_NICENESS`, over its own shards of the reference corpus
(`sample-corpus`'s documents, 1,000 per shard). Runs start together once every process is up;
the wall time is from that start to the last run's end, so it counts the workers' start-up but
not the run processes'. Settings alternate within each round.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from assets.shards import CPU_STAGE_NICENESS, for_each_shard  # noqa: E402
from resources.corpus.chunking import ChunkingConfig  # noqa: E402
from resources.corpus.records import Document  # noqa: E402
from resources.corpus.sample import SampleSpec, make_document  # noqa: E402
from resources.corpus.shard_chunking import ShardChunker  # noqa: E402
from resources.corpus.tables import write_documents  # noqa: E402
from resources.shard_files import ShardFiles  # noqa: E402
from resources.tokenizer.model_source import DEFAULT_MODEL  # noqa: E402

SHARD_SIZE = 1000


class _Context(SimpleNamespace):
    """What `for_each_shard` uses of an asset's context."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(partition_keys=keys, log=SimpleNamespace(info=lambda message: None))

    def add_asset_metadata(self, metadata: dict, partition_key: str) -> None:
        pass


def _write_shard(job: tuple[str, int, int]) -> None:
    data_dir, shard, total = job
    spec = SampleSpec(docs=total)
    first = shard * SHARD_SIZE
    documents = [make_document(i, spec) for i in range(first, first + SHARD_SIZE)]
    write_documents(
        ShardFiles(Path(data_dir), f"s{shard:04d}").documents,
        [Document(d["id"], d["text"], {}) for d in documents],
    )


def _run(data_dir: str, processes: int, keys: list[str]) -> None:
    """One run's chunks step, started by `wave` through `-c`: with no main module file, the
    step's worker processes import what they would under `dagster api execute_run`."""
    model = os.environ.get("EMBEDDING_MODEL", DEFAULT_MODEL)
    cut = ShardChunker(data_dir, model, ChunkingConfig())
    print("ready", flush=True)
    sys.stdin.readline()
    for_each_shard(_Context(keys), cut, niceness=CPU_STAGE_NICENESS, processes=processes)
    print(time.time(), flush=True)


def wave(data_dir: str, runs: int, per_run: int, processes: int) -> float:
    """Seconds from the common start to the last of `runs` runs' chunks steps ending."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import chunk_step; "
        "chunk_step._run(sys.argv[1], int(sys.argv[2]), sys.argv[3:])"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, data_dir, str(processes)]
            + [f"s{r * per_run + i:04d}" for i in range(per_run)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for r in range(runs)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    started = time.time()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    ends = [float(worker.stdout.readline()) for worker in workers]
    for worker in workers:
        if worker.wait():
            raise SystemExit(f"a run failed with exit code {worker.returncode}")
    return max(ends) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards-per-run", type=int, default=8)
    parser.add_argument("--concurrent-runs", default="1,8")
    parser.add_argument("--processes", default="1,4")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    concurrent = [int(n) for n in args.concurrent_runs.split(",")]
    processes = [int(n) for n in args.processes.split(",")]
    shards = max(concurrent) * args.shards_per_run

    with tempfile.TemporaryDirectory() as data_dir:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(mp_context=spawn) as pool:
            jobs = [(data_dir, s, shards * SHARD_SIZE) for s in range(shards)]
            list(pool.map(_write_shard, jobs))
        best: dict[tuple[int, int], float] = {}
        for _ in range(args.rounds):
            for runs in concurrent:
                for count in processes:
                    seconds = wave(data_dir, runs, args.shards_per_run, count)
                    best[runs, count] = min(best.get((runs, count), seconds), seconds)
    print(f"CPUs: {os.cpu_count()}, {args.shards_per_run} shards of {SHARD_SIZE:,} per run")
    print("| runs at once | processes per run | wall | shards/s | x one process |")
    print("|---:|---:|---:|---:|---:|")
    for (runs, count), seconds in best.items():
        base = best[runs, processes[0]]
        rate = runs * args.shards_per_run / seconds
        print(f"| {runs} | {count} | {seconds:.1f} s | {rate:.2f} | {base / seconds:.2f} |")


if __name__ == "__main__":
    main()
