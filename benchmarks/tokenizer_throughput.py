"""Tokens/s of one process: the `tokenizers` library against the engine's tokenization.

    python benchmarks/tokenizer_throughput.py [--texts N] [--rounds N]

Two corpora: the mixed benchmark corpus (vocabulary words with Zipf frequencies, which flatters a
per-word cache) and the Python standard library's source cut into 1,000-character pieces (code,
comments and docstrings: many distinct identifiers, numbers and punctuation, a hard case for it).
The engine's tokenization starts each corpus with an empty cache; its first pass is reported on its
own. Rows of one corpus are interleaved per round so the ratio compares code, not machine load.
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
from resources.embedding.model_source import DEFAULT_MODEL, resolve_model_path  # noqa: E402
from resources.embedding.tokenization import (  # noqa: E402
    ascii_wordpiece,
    tokenize,
    truncating_tokenizer,
)


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
    args = parser.parse_args()

    library = truncating_tokenizer(DEFAULT_MODEL, args.max_length)
    corpora = {
        "mixed corpus": mixed_corpus(resolve_model_path(DEFAULT_MODEL), args.texts),
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
            return tokenize(DEFAULT_MODEL, args.max_length, texts)

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


if __name__ == "__main__":
    main()
