"""The engine against sentence-transformers `encode` on the CPU, in interleaved rounds.

    python benchmarks/embedding_cpu_paired.py [--texts N] [--rounds N] [--packed]

A CPU shared with other work changes speed from one minute to the next, so one row after the
other compares loads, not code. Here every round runs each `encode` batch size and the engine
back to back on the same texts, and the comparison is per round: the engine's time over the best
`encode` time of that round. Process CPU seconds are reported next to wall seconds: they move
less with what else the machine runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

from benchmarks.mixed_corpus import mixed_corpus  # noqa: E402
from resources.embedding import EmbeddingEngine, EngineConfig  # noqa: E402
from resources.embedding.tokenization import tokenize  # noqa: E402
from resources.tokenizer.model_source import DEFAULT_MODEL, resolve_model_path  # noqa: E402


def timed(work) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", default="32,64,128")
    parser.add_argument("--budgets", default="", help="engine token budgets (default: its own)")
    parser.add_argument("--packed", action="store_true", help="also the engine on packed batches")
    args = parser.parse_args()

    model_dir = resolve_model_path(args.model)
    texts = mixed_corpus(model_dir, args.texts)
    engines = {"engine end to end": EmbeddingEngine(EngineConfig(model=args.model, device="cpu"))}
    for budget in [int(b) for b in args.budgets.split(",") if b]:
        engines[f"engine end to end, budget {budget}"] = EmbeddingEngine(
            EngineConfig(model=args.model, device="cpu", token_budget=budget)
        )
    if args.packed:
        engines["engine end to end, packed batches"] = EmbeddingEngine(
            EngineConfig(model=args.model, device="cpu", packed=True)
        )
    engine = engines["engine end to end"]
    tokens = int(tokenize(args.model, engine.max_length, texts).lengths.sum())
    st = SentenceTransformer(str(model_dir), device="cpu", model_kwargs={"dtype": torch.float32})
    runs = {f"encode fp32, batch {b}": b for b in map(int, args.batch_sizes.split(","))}
    engine.embed(texts[:8])
    st.encode(texts[:8])
    print(
        f"CPU, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads; "
        f"{args.texts} texts, {tokens} tokens"
    )

    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    ratios: list[float] = []
    for round_ in range(args.rounds):
        for name, size in runs.items():
            wall, cpu = timed(
                lambda size=size: st.encode(texts, batch_size=size, normalize_embeddings=True)
            )
            walls.setdefault(name, []).append(wall)
            cpus.setdefault(name, []).append(cpu)
        for name, each in engines.items():
            wall, cpu = timed(lambda each=each: each.embed(texts))
            walls.setdefault(name, []).append(wall)
            cpus.setdefault(name, []).append(cpu)
        best_encode = min(walls[name][-1] for name in runs)
        ratios.append(best_encode / walls["engine end to end"][-1])
        print(
            f"round {round_ + 1}: "
            + ", ".join(f"{name} {w[-1]:.1f} s" for name, w in walls.items()),
            flush=True,
        )

    print()
    print("| run | median wall s | tokens/s (median wall) | median CPU s | tokens per CPU s |")
    print("|---|---:|---:|---:|---:|")
    for name in walls:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"| {name} | {wall:.2f} | {tokens / wall:,.0f} | {cpu:.2f} | {tokens / cpu:,.0f} |")
    print()
    print(
        "engine speed over the best encode batch size of the same round: "
        + ", ".join(f"{r:.2f}x" for r in ratios)
    )


if __name__ == "__main__":
    main()
