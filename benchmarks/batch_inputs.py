"""Host time to turn planned batches into model inputs: the launching thread's share per token.

    python benchmarks/batch_inputs.py [--rows N] [--budget TOKENS] [--repeat N]

On a GPU the thread that launches batches also builds each one's inputs (gathers, pinning); while
it does, the device waits unless earlier batches are still queued. This times that building
alone, for packed and padded batches of the engine's own plan, on synthetic rows of 4 to 256
token ids (the same every time). Run it at two commits to compare them; pinning is left out so
it runs on any machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.embedding.inputs import PackedInputs, PaddedInputs  # noqa: E402
from resources.embedding.planner import iter_batches  # noqa: E402
from resources.embedding.tokenization import Tokenized  # noqa: E402


def synthetic_rows(rows: int) -> Tokenized:
    """Rows of 4 to 256 random token ids, the same every time."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 257, size=rows).astype(np.int32)
    ids = rng.integers(1000, 20000, size=int(lengths.sum())).astype(np.int32)
    return Tokenized(ids=ids, lengths=lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--budget", type=int, default=131_072)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    tokenized = synthetic_rows(args.rows)
    lengths = tokenized.lengths
    offsets = tokenized.offsets
    tokens = int(lengths.sum())
    builds = {
        "packed": lambda batch: PackedInputs(tokenized, offsets, batch, pin=False),
        "padded": lambda batch: PaddedInputs(tokenized, offsets, batch, False, 8, 256),
    }
    print(f"{args.rows:,} rows, {tokens:,} tokens, budget {args.budget:,}")
    print("| batches | count | best seconds | ns per token |")
    print("|---|---:|---:|---:|")
    for name, build in builds.items():
        plan = list(
            iter_batches(
                lengths,
                lambda: args.budget,
                max_rows=None,
                pad_multiple=1 if name == "packed" else 8,
                limit=256,
            )
        )
        best = float("inf")
        for _ in range(args.repeat):
            began = time.perf_counter()
            for batch in plan:
                build(batch)
            best = min(best, time.perf_counter() - began)
        print(f"| {name} | {len(plan)} | {best:.3f} | {best / tokens * 1e9:.1f} |")


if __name__ == "__main__":
    main()
