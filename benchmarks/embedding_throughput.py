"""Embedding throughput: sentence-transformers `encode` against the engine, in one run.

    python benchmarks/embedding_throughput.py [--model DIR] [--texts N] [--baseline-texts N]

Rows, all on the same mixed corpus (benchmarks/mixed_corpus.py), the baselines on a prefix of
it (the corpus is shuffled, so a prefix has the same mix):
  - encode fp32, batch 32 (and, on the CPU, every batch size in --cpu-batch-sizes)
  - encode bf16, batch 256 (GPU only)
  - engine end to end: raw texts in, vectors in host memory out
  - engine GPU stage: pre-tokenized ids in (tokenization excluded), vectors in host memory out
Tokens are counted the same way for every row: the model tokenizer's ids, special tokens
included, truncated to max_length. Also reports the engine's agreement with encode fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.mixed_corpus import mixed_corpus  # noqa: E402
from resources.embedding import EmbeddingEngine, EmbeddingResult, EngineConfig  # noqa: E402
from resources.embedding.devices import MultiDeviceEngine, device_list  # noqa: E402
from resources.embedding.engine import TOKENIZE_CHUNK  # noqa: E402
from resources.embedding.tokenization import TokenizerPool, tokenize  # noqa: E402
from resources.tokenizer.model_source import DEFAULT_MODEL, resolve_model_path  # noqa: E402


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_encode(
    model_dir: Path, texts: list[str], device: str, dtype: torch.dtype, batch: int, repeat: int
) -> tuple[np.ndarray, float]:
    """sentence-transformers as its users call it; the best of `repeat` timed runs."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device=device, model_kwargs={"dtype": dtype})
    st.encode(texts[:batch], batch_size=batch, normalize_embeddings=True)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        _sync()
        began = time.perf_counter()
        vectors = st.encode(texts, batch_size=batch, normalize_embeddings=True)
        _sync()
        best = min(best, time.perf_counter() - began)
    return vectors, best


def commit() -> str:
    try:
        out = subprocess.run(
            # "-dirty" where the tree differs from the commit (a copied tree, uncommitted work).
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fastest(call: Callable[[], EmbeddingResult], repeat: int) -> EmbeddingResult:
    """The quickest of `repeat` calls: the others measured the machine's noise."""
    return min((call() for _ in range(repeat)), key=lambda out: out.stats.wall_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--texts", type=int, default=None, help="engine corpus size")
    parser.add_argument("--baseline-texts", type=int, default=None, help="encode corpus size")
    parser.add_argument("--cpu-batch-sizes", default="16,32,64,128")
    parser.add_argument(
        "--budgets",
        default="",
        help="also time the GPU stage at these fixed token budgets, comma separated",
    )
    parser.add_argument(
        "--probe-max",
        type=int,
        default=0,
        help="run the budget probe (GPU) with this largest budget, to show where memory ends",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument(
        "--workers", default="", help="also time end to end with these tokenizer worker counts"
    )
    parser.add_argument(
        "--devices",
        default="",
        help='also time several devices at once, e.g. "cuda:0,cuda:1" (one engine process each)',
    )
    parser.add_argument("--repeat", type=int, default=2, help="engine runs; the best is kept")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    model_dir = resolve_model_path(args.model)
    engine = EmbeddingEngine(EngineConfig(model=args.model, device=args.device))
    gpu = engine.device.type == "cuda"
    count = args.texts or (200_000 if gpu else 4_000)
    baseline_count = args.baseline_texts or (10_000 if gpu else 1_000)
    texts = mixed_corpus(model_dir, count)
    baseline_texts = texts[:baseline_count]
    tokens = tokenize(args.model, engine.max_length, texts)
    baseline_tokens = int(tokens.lengths[:baseline_count].sum())
    total_tokens = int(tokens.lengths.sum())
    device_name = torch.cuda.get_device_name() if gpu else f"CPU, {os.cpu_count()} cores"
    print(f"device: {device_name}; torch {torch.__version__}; commit {commit()}")
    print(
        f"corpus: {count} texts, {total_tokens} tokens (mean {total_tokens / count:.1f}); "
        f"baselines on the first {baseline_count} texts ({baseline_tokens} tokens)"
    )

    rows: list[dict] = []

    def add(name: str, texts_n: int, tokens_n: int, seconds: float, **extra) -> None:
        rows.append(
            {
                "row": name,
                "texts": texts_n,
                "tokens": tokens_n,
                "seconds": seconds,
                "tokens_per_s": tokens_n / seconds,
                "texts_per_s": texts_n / seconds,
                **extra,
            }
        )
        print(f"  {name}: {tokens_n / seconds:,.0f} tokens/s", flush=True)

    device = str(engine.device)
    reference, seconds = run_encode(
        model_dir, baseline_texts, device, torch.float32, 32, args.repeat
    )
    add("encode fp32, batch 32", baseline_count, baseline_tokens, seconds)
    if gpu:
        _, seconds = run_encode(model_dir, baseline_texts, device, torch.bfloat16, 256, args.repeat)
        add("encode bf16, batch 256", baseline_count, baseline_tokens, seconds)
    else:
        for size in [int(s) for s in args.cpu_batch_sizes.split(",") if s]:
            if size == 32:
                continue
            _, seconds = run_encode(
                model_dir, baseline_texts, device, torch.float32, size, args.repeat
            )
            add(f"encode fp32, batch {size}", baseline_count, baseline_tokens, seconds)

    probe = None
    if args.probe_max and gpu:
        with tempfile.TemporaryDirectory() as data_dir:
            prober = EmbeddingEngine(
                EngineConfig(model=args.model, max_budget=args.probe_max, data_dir=data_dir)
            )
            began = time.perf_counter()
            result = prober.probe()
            probe = {
                "budget": result.budget,
                "seconds": time.perf_counter() - began,
                "trials": [[t.budget, t.ok, t.peak_bytes] for t in result.trials],
            }
        print(f"probe at length {engine.max_length}: {probe}")

    engine.warm_up()
    check = engine.embed(baseline_texts).vectors
    cosine = float((check * reference).sum(axis=1).min())
    best = fastest(lambda: engine.embed(texts), args.repeat)
    meta = best.stats.as_metadata()
    add("engine end to end", count, total_tokens, best.stats.wall_seconds, stats=meta)
    ids = [tokens.ids[o : o + n] for o, n in zip(tokens.offsets, tokens.lengths, strict=True)]
    best_ids = fastest(lambda: engine.embed_token_ids(ids), args.repeat)
    add(
        f"engine {'GPU' if gpu else 'model'} stage (pre-tokenized)",
        count,
        total_tokens,
        best_ids.stats.wall_seconds,
        stats=best_ids.stats.as_metadata(),
    )
    add(
        "engine device time only (sum of batch times)",
        count,
        total_tokens,
        best_ids.stats.device_seconds,
    )
    agreement = float((best.vectors * best_ids.vectors).sum(axis=1).min())

    if engine.packed:
        padded = EmbeddingEngine(EngineConfig(model=args.model, device=args.device, packed=False))
        padded.warm_up()
        best_p = fastest(lambda: padded.embed_token_ids(ids), args.repeat)
        add(
            "engine GPU stage, padded batches (pre-tokenized)",
            count,
            total_tokens,
            best_p.stats.wall_seconds,
            stats=best_p.stats.as_metadata(),
        )
        print(
            "packed vs padded: min cosine",
            float((best_p.vectors * best_ids.vectors).sum(axis=1).min()),
        )

    if gpu:
        pool = TokenizerPool(args.model, engine.max_length, engine._workers())
        pool.warm_up()
        began = time.perf_counter()
        chunks = [
            pool.submit(texts[i : i + TOKENIZE_CHUNK]) for i in range(0, count, TOKENIZE_CHUNK)
        ]
        for chunk in chunks:
            chunk.result()
        add(
            f"tokenizer pool alone ({pool.workers} processes)",
            count,
            total_tokens,
            time.perf_counter() - began,
        )
        pool.close()

    for workers in [int(w) for w in args.workers.split(",") if w]:
        other = EmbeddingEngine(
            EngineConfig(model=args.model, device=args.device, tokenizer_workers=workers)
        )
        other.warm_up()
        seconds = min(other.embed(texts).stats.wall_seconds for _ in range(args.repeat))
        add(f"engine end to end, {workers} tokenizer processes", count, total_tokens, seconds)
        other.close()

    for packed in sorted({engine.packed, False}, reverse=True) if args.compile and gpu else []:
        kind = "packed" if packed else "padded"
        compiled = EmbeddingEngine(
            EngineConfig(model=args.model, device=args.device, compile=True, packed=packed)
        )
        began = time.perf_counter()
        try:
            compiled.embed_token_ids(ids)
        except Exception as exc:  # a compiler failure is a finding, not the end of the table
            print(f"torch.compile, {kind}: failed: {type(exc).__name__}: {exc}"[:2000])
            continue
        print(f"torch.compile, {kind}: first run (compiling) {time.perf_counter() - began:.1f} s")
        best_c = fastest(lambda e=compiled: e.embed_token_ids(ids), args.repeat)
        add(
            f"engine GPU stage, torch.compile, {kind} (pre-tokenized)",
            count,
            total_tokens,
            best_c.stats.wall_seconds,
            stats=best_c.stats.as_metadata(),
        )
        print(
            f"compiled {kind} vs eager: min cosine",
            float((best_c.vectors * best_ids.vectors).sum(axis=1).min()),
        )

    if args.devices:
        single = min(engine.embed_tokenized(tokens).stats.wall_seconds for _ in range(args.repeat))
        add("engine GPU stage, flat arrays, 1 device", count, total_tokens, single)
        several = MultiDeviceEngine(
            EngineConfig(model=args.model, device=args.devices), device_list(args.devices)
        )
        several.warm_up()
        best_m = fastest(lambda: several.embed_tokenized(tokens), args.repeat)
        name = f"engine GPU stage, flat arrays, {len(several.devices)} devices"
        add(name, count, total_tokens, best_m.stats.wall_seconds, stats=best_m.stats.as_metadata())
        print(
            f"{len(several.devices)} devices vs 1: {single / best_m.stats.wall_seconds:.2f}x; "
            f"min cosine {float((best_m.vectors * best_ids.vectors).sum(axis=1).min()):.6f}"
        )
        seconds = min(several.embed(texts).stats.wall_seconds for _ in range(args.repeat))
        add(f"engine end to end, {len(several.devices)} devices", count, total_tokens, seconds)
        several.close()

    for budget in [int(b) for b in args.budgets.split(",") if b]:
        fixed = EmbeddingEngine(
            EngineConfig(model=args.model, device=args.device, token_budget=budget)
        )
        fixed.embed_token_ids(ids[:2000])
        out = fixed.embed_token_ids(ids)
        add(
            f"GPU stage, fixed budget {budget}",
            count,
            total_tokens,
            out.stats.wall_seconds,
            stats=out.stats.as_metadata(),
        )

    base = rows[0]["tokens_per_s"]
    print()
    print(
        f"device: {device_name}; commit {commit()}; python {platform.python_version()}; "
        f"torch {torch.__version__}"
    )
    print(
        f"engine vs encode fp32: min cosine {cosine:.6f}; end-to-end vs pre-tokenized "
        f"(different batch compositions): min cosine {agreement:.6f}"
    )
    print()
    print("| run | texts | tokens | seconds | tokens/s | texts/s | x encode fp32 b32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['row']} | {row['texts']:,} | {row['tokens']:,} | {row['seconds']:.2f} | "
            f"{row['tokens_per_s']:,.0f} | {row['texts_per_s']:,.0f} | "
            f"{row['tokens_per_s'] / base:.1f} |"
        )
    print()
    print("engine end-to-end stats:", json.dumps(meta))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": device_name,
                    "commit": commit(),
                    "rows": rows,
                    "min_cosine": cosine,
                    "probe": probe,
                },
                indent=2,
            )
        )
    engine.close()


if __name__ == "__main__":
    main()
