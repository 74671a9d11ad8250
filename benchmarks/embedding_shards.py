"""The GPU stage on a pipeline's own chunk files, called the way the embeddings asset calls it.

    python benchmarks/embedding_shards.py DATA_DIR [--model DIR] [--device cuda] [--shards N]
        [--cpu-load N]

DATA_DIR is a pipeline data directory (`benchmarks/full_run.py` leaves one under its --out):
its `chunks/*.parquet` are real chunks of the reference corpus, mostly full 256-token windows.
One engine in a fresh process, then, in this order:

1. one call per shard before `prepare()`: what the first run of a process paid before the
   resource prepared the engine at run start;
2. one call per shard after it, on the same shards again (the asset's calls in a process that
   has seen these batch shapes);
3. one call per shard on as many other shards (shapes this process has not seen: what a run
   process meets);
4. the same shards as in 2 while --cpu-load N processes spin on the CPU at normal priority
   (what other runs' chunking and ingest do to the process that feeds the GPU), and again with
   the spinning processes at the pipeline's `CPU_STAGE_NICENESS`;
5. the same as 2 with padded batches instead of packed ones (on a GPU that packs);
6. every shard of 2 in one call: the most a step could gain by not stopping between shards.

Each row reports tokens/s over the calls' wall time and over their device time (the sum of the
batches' CUDA event times, which also grows when the host launches a batch's kernels late).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets.shards import CPU_STAGE_NICENESS  # noqa: E402
from resources.corpus.tables import read_chunks, token_arrays  # noqa: E402
from resources.embedding.engine import EmbeddingEngine, EngineConfig  # noqa: E402
from resources.embedding.tokenization import Tokenized  # noqa: E402
from resources.tokenizer.model_source import DEFAULT_MODEL  # noqa: E402


def load_shards(data_dir: Path, limit: int | None) -> list[Tokenized]:
    files = sorted((data_dir / "chunks").glob("*.parquet"))[:limit]
    if not files:
        raise SystemExit(f"no chunk files under {data_dir / 'chunks'}")
    return [Tokenized(*token_arrays(read_chunks(f, columns=["token_ids"]))) for f in files]


def per_shard(engine: EmbeddingEngine, shards: list[Tokenized]) -> dict:
    began = time.perf_counter()
    results = [engine.embed_tokenized(shard) for shard in shards]
    wall = time.perf_counter() - began
    tokens = sum(r.stats.tokens for r in results)
    device = sum(r.stats.device_seconds for r in results)
    first = results[0].stats
    return {
        "calls": len(results),
        "tokens": tokens,
        "wall_seconds": round(wall, 3),
        "tokens_per_second": round(tokens / wall),
        "device_tokens_per_second": round(tokens / device) if device else None,
        "first_call_tokens_per_second": round(first.tokens / first.wall_seconds),
        "budget_final": results[-1].stats.final_budget,
    }


def _spin(stop: multiprocessing.synchronize.Event, niceness: int) -> None:
    os.nice(niceness)
    while not stop.is_set():
        sum(range(10_000))


def under_load(processes: int, niceness: int, work):
    """`work()` while `processes` other processes keep cores busy at `niceness`."""
    stop = multiprocessing.Event()
    spinners = [
        multiprocessing.Process(target=_spin, args=(stop, niceness)) for _ in range(processes)
    ]
    for spinner in spinners:
        spinner.start()
    try:
        time.sleep(0.5)
        return work()
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--model", default=os.environ.get("EMBEDDING_MODEL", DEFAULT_MODEL))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--shards", type=int, default=16, help="shards per row")
    parser.add_argument("--cpu-load", type=int, default=0, help="busy processes for row 4")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    loaded = load_shards(args.data_dir, 2 * args.shards)
    shards, others = loaded[: args.shards], loaded[args.shards :]
    rows: dict[str, dict] = {}
    engine = EmbeddingEngine(EngineConfig(model=args.model, device=args.device))
    rows["per shard, fresh process"] = per_shard(engine, shards)
    engine.prepare()
    rows["per shard, prepared, shards seen before"] = per_shard(engine, shards)
    if others:
        rows["per shard, prepared, other shards"] = per_shard(engine, others)
    if args.cpu_load:
        for niceness in (0, CPU_STAGE_NICENESS):
            rows[f"per shard, seen, {args.cpu_load} busy processes at niceness {niceness}"] = (
                under_load(args.cpu_load, niceness, lambda: per_shard(engine, shards))
            )
    if engine.packed:
        padded = EmbeddingEngine(EngineConfig(model=args.model, device=args.device, packed=False))
        padded.prepare()
        rows["per shard, prepared, padded batches"] = per_shard(padded, shards)
    rows["all shards in one call"] = per_shard(engine, [Tokenized.concat(shards)])

    print(f"{len(shards)} shards, {engine.device}, packed={engine.packed}")
    print("| run | calls | tokens/s (wall) | tokens/s (device) | first call, tokens/s |")
    for name, row in rows.items():
        print(
            f"| {name} | {row['calls']} | {row['tokens_per_second']:,} | "
            f"{row['device_tokens_per_second'] or 0:,} | {row['first_call_tokens_per_second']:,} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
