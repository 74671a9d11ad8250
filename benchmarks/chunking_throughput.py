"""Tokens/s of the chunker on one core: the library's tokenizer against the ASCII path.

    python benchmarks/chunking_throughput.py [--docs N] [--rounds N]

Documents are the reference corpus's first N (`sample-corpus`, so lengths follow its heavy
tail). Both chunkers cut the same chunks (checked here, and in tests/resources/corpus); rows
alternate within each round so the ratio compares code rather than machine load. Tokens are
those of the chunks, special tokens and overlaps included: what the encoder will see.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core, as in one run's chunks step
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.corpus.chunking import Chunker  # noqa: E402
from resources.corpus.records import Document  # noqa: E402
from resources.corpus.sample import SampleSpec, make_document  # noqa: E402
from resources.tokenizer.model_source import load_tokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    spec = SampleSpec(docs=args.docs)
    documents = [Document(d["id"], d["text"]) for d in map(make_document, range(args.docs),
                                                            [spec] * args.docs)]  # fmt: skip
    ascii_path = Chunker(load_tokenizer())
    library = Chunker(load_tokenizer())
    library._fast = None  # the library's encodings only
    expected = list(library.chunk(documents))
    assert list(ascii_path.chunk(documents)) == expected, "the two chunkers differ"
    tokens = sum(len(chunk.token_ids) for chunk in expected)
    best = {"library": float("inf"), "ascii": float("inf")}
    for _ in range(args.rounds):
        for name, chunker in (("library", library), ("ascii", ascii_path)):
            started = time.perf_counter()
            for _chunk in chunker.chunk(documents):
                pass
            best[name] = min(best[name], time.perf_counter() - started)
    print("| documents | chunks | tokens | library tok/s | ASCII path tok/s | x library |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.docs:,} | {len(expected):,} | {tokens:,} | {tokens / best['library']:,.0f} "
        f"| {tokens / best['ascii']:,.0f} | {best['library'] / best['ascii']:.2f} |"
    )


if __name__ == "__main__":
    main()
