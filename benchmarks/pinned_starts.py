"""The GPU stage with a packed batch's row starts copied from pinned or from pageable memory.

    python benchmarks/pinned_starts.py [--model DIR] [--rows N] [--cpu-load N]

A host-to-device copy from pageable memory lets the driver wait for the stream first; once per
batch, that stops the host from preparing the next batch while the device runs the last one,
and the device then waits for the host. This is invisible on an idle host and grows with host
load (other runs' CPU stages, tokenizer processes). Rows: the engine as it is (starts pinned),
and the same engine with the starts copied from pageable memory (as the engine did at
a6af71e), alternating, alone and beside --cpu-load busy processes. Synthetic rows of 4 to 256
random token ids, the same every time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.batch_inputs import synthetic_rows  # noqa: E402
from benchmarks.embedding_shards import under_load  # noqa: E402
from resources.embedding import inputs as inputs_module  # noqa: E402
from resources.embedding.engine import EmbeddingEngine, EngineConfig  # noqa: E402
from resources.tokenizer.model_source import DEFAULT_MODEL  # noqa: E402


class PageableStarts(inputs_module.PackedInputs):
    """The row starts of each piece built in pageable memory, as before they were pinned."""

    def encode(self, model, start, end, mark):
        first, last = int(self.starts[start]), int(self.starts[end])
        ids = self.host_ids[first:last].to(model.device, non_blocking=True)
        starts = torch.from_numpy((self.starts[start : end + 1] - first).astype(np.int32))
        starts = starts.to(model.device, non_blocking=True)
        return model.encode_packed(ids, starts, int(self.lengths[start]), mark)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("EMBEDDING_MODEL", DEFAULT_MODEL))
    parser.add_argument("--device", default="cuda", help="cpu only to try the script")
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--cpu-load", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    tokenized = synthetic_rows(args.rows)
    engine = EmbeddingEngine(EngineConfig(model=args.model, device=args.device, packed=True))
    engine.prepare()
    pinned = inputs_module.PackedInputs
    best: dict[str, float] = {}
    for load in (0, args.cpu_load):
        for _ in range(args.rounds):
            for name, cls in (("pinned", pinned), ("pageable", PageableStarts)):
                engine_module = sys.modules[EmbeddingEngine.__module__]
                engine_module.PackedInputs = cls
                result = under_load(load, 0, lambda: engine.embed_tokenized(tokenized))
                key = f"starts {name}, {load} busy processes"
                best[key] = min(best.get(key, float("inf")), result.stats.wall_seconds)
                print(f"{key}: {result.stats.wall_seconds:.3f} s wall, "
                      f"{result.stats.device_seconds:.3f} s device", flush=True)  # fmt: skip
    tokens = int(tokenized.lengths.sum())
    print(f"\n{engine.device}, {args.rows:,} rows, {tokens:,} tokens")
    print("| run | best wall s | tokens/s |")
    print("|---|---:|---:|")
    for key, seconds in best.items():
        print(f"| {key} | {seconds:.3f} | {tokens / seconds:,.0f} |")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
