"""Tokens/s of one process: the `tokenizers` library against the engine's tokenization.

    python benchmarks/tokenizer_throughput.py [--texts N] [--rounds N] [--pools 1,4,8,15]

Two corpora: the mixed benchmark corpus (vocabulary words with Zipf frequencies, which flatters a
per-word cache) and the Python standard library's source cut into 1,000-character pieces (code,
comments and docstrings: many distinct identifiers, numbers and punctuation, a hard case for it).
The engine's tokenization starts each corpus with an empty cache; its first pass is reported on its
own. Rows of one corpus are interleaved per round so the ratio compares code, not machine load.

`--pools` then runs the engine's `TokenizerPool` with each number of processes on the mixed
corpus, in the chunks the engine submits, and reports tokens/s beside the sum of the workers'
own tokenizing seconds: when the workers are busy for much less than processes x wall time, the
pool is bound by what surrounds them (the parent's pickling and dispatch), not by tokenizing.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core, as in each tokenizer process
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.mixed_corpus import mixed_corpus  # noqa: E402
from resources.embedding.engine import TOKENIZE_CHUNK  # noqa: E402
from resources.embedding.tokenization import (  # noqa: E402
    TokenizerPool,
    ascii_wordpiece,
    tokenize,
    truncating_tokenizer,
)
from resources.tokenizer.model_source import DEFAULT_MODEL, resolve_model_path  # noqa: E402


def source_corpus(count: int, piece: int = 1000) -> list[str]:
    texts: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.extend(text[i : i + piece] for i in range(0, len(text), piece))
        if len(texts) >= count:
            break
    return texts[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--pools", default="", help="comma-separated process counts")
    args = parser.parse_args()

    library = truncating_tokenizer(args.model, args.max_length)
    corpora = {
        "mixed corpus": mixed_corpus(resolve_model_path(args.model), args.texts),
        "stdlib source": source_corpus(args.texts),
    }
    print(
        "| corpus | texts | ASCII texts | tokens | library tok/s | engine tok/s (first pass) "
        "| engine tok/s | x library |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, texts in corpora.items():
        ascii_wordpiece.cache_clear()  # a fresh word cache for each corpus

        def engine_ids(texts=texts):
            return tokenize(args.model, args.max_length, texts)

        started = time.perf_counter()
        first = engine_ids()
        first_seconds = time.perf_counter() - started
        expected = [e.ids for e in library.encode_batch_fast(texts)]
        assert first.ids.tolist() == [i for row in expected for i in row], "ids differ"
        tokens = int(first.lengths.sum())
        best = {"library": float("inf"), "engine": float("inf")}
        for _ in range(args.rounds):
            for row, work in (
                ("library", lambda texts=texts: library.encode_batch_fast(texts)),
                ("engine", engine_ids),
            ):
                started = time.perf_counter()
                work()
                best[row] = min(best[row], time.perf_counter() - started)
        ascii_texts = sum(t.isascii() for t in texts)
        print(
            f"| {name} | {len(texts):,} | {ascii_texts:,} | {tokens:,} "
            f"| {tokens / best['library']:,.0f} | {tokens / first_seconds:,.0f} "
            f"| {tokens / best['engine']:,.0f} | {best['library'] / best['engine']:.2f} |"
        )

    pools = [int(p) for p in args.pools.split(",") if p]
    if pools:
        pool_rows(args.model, corpora["mixed corpus"], pools, args.max_length, args.rounds)


def pool_rows(model: str, texts: list[str], sizes: list[int], max_length: int, rounds: int) -> None:
    print("\n| processes | tokens | tokens/s (best round) | per process | workers busy |")
    print("|---:|---:|---:|---:|---:|")
    for size in sizes:
        pool = TokenizerPool(model, max_length, size)
        pool.warm_up()
        best, busy = float("inf"), 0.0
        for _ in range(rounds):
            started = time.perf_counter()
            chunks = [
                pool.submit(texts[i : i + TOKENIZE_CHUNK])
                for i in range(0, len(texts), TOKENIZE_CHUNK)
            ]
            parts = [chunk.result() for chunk in chunks]
            seconds = time.perf_counter() - started
            if seconds < best:
                best, busy = seconds, sum(part.seconds for part in parts)
        pool.close()
        tokens = sum(int(part.lengths.sum()) for part in parts)
        print(
            f"| {size} | {tokens:,} | {tokens / best:,.0f} | {tokens / best / size:,.0f} "
            f"| {busy / (best * size):.0%} |"
        )


if __name__ == "__main__":
    main()
