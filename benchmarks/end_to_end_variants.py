"""Where end-to-end embedding loses to the GPU stage: one corpus, several engine variants, one run.

    python benchmarks/end_to_end_variants.py [--model DIR] [--texts N] [--variants a,b,...]

End to end (raw texts in) runs tokenizer processes beside the process that launches the GPU's
batches. Each variant embeds the same mixed corpus (`benchmarks/mixed_corpus.py`) the same way,
best of --repeat after a warm-up, and reports wall time, the summed device time of the batches,
how long the GPU sat idle between batches (`device_idle_seconds`) and how long the launching thread
waited for tokens. Variants:

  stage      pre-tokenized ids (no tokenizer processes): the ceiling
  default    the engine as configured by default
  workers=N  N tokenizer processes
  compiled   `compile=True`; its first call's compilation time is printed
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.embedding_throughput import fastest  # noqa: E402
from benchmarks.mixed_corpus import mixed_corpus  # noqa: E402
from resources.embedding.engine import EmbeddingEngine, EngineConfig  # noqa: E402
from resources.embedding.stats import EmbeddingStats  # noqa: E402
from resources.embedding.tokenization import tokenize  # noqa: E402
from resources.tokenizer.model_source import DEFAULT_MODEL, resolve_model_path  # noqa: E402


def measure(args: argparse.Namespace, variant: str, texts: list[str]) -> EmbeddingStats:
    """The best of --repeat calls of one variant, after its warm-up and a first call."""
    workers = int(variant[8:]) if variant.startswith("workers=") else None
    config = EngineConfig(
        model=args.model,
        device=args.device,
        tokenizer_workers=workers,
        compile=variant == "compiled",
    )
    engine = EmbeddingEngine(config)
    began = time.perf_counter()
    engine.warm_up()
    if variant == "stage":
        tokens = tokenize(args.model, engine.max_length, texts)
        call = partial(engine.embed_tokenized, tokens)
    else:
        call = partial(engine.embed, texts)
    call()
    print(f"{variant}: warm-up and first call {time.perf_counter() - began:.1f} s", flush=True)
    best = fastest(call, args.repeat).stats
    print(f"{variant}: {best.as_metadata()}", flush=True)
    engine.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("EMBEDDING_MODEL", DEFAULT_MODEL))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--texts", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default="stage,default,workers=12,compiled")
    args = parser.parse_args()

    texts = mixed_corpus(resolve_model_path(args.model), args.texts)
    rows = [(variant, measure(args, variant, texts)) for variant in args.variants.split(",")]
    print()
    print("| variant | tokens/s | wall s | device s | GPU idle between batches s | token wait s |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant, s in rows:
        print(
            f"| {variant} | {s.tokens_per_second:,.0f} | {s.wall_seconds:.2f} | "
            f"{s.device_seconds:.2f} | {s.device_idle_seconds:.2f} | "
            f"{s.tokenize_wait_seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
