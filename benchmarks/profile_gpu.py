"""The profiling sweep on a GPU machine, fed with chunk token ids made elsewhere.

    python benchmarks/profile_gpu.py IDS.npz MODEL_DIR OUT_DIR

IDS.npz holds `lengths` and `flat` (the chunks of 3,000 sample documents, as
`resources.embedding.profiling.profile_token_ids` makes them); the machine needs only torch,
transformers and matplotlib. Writes OUT_DIR/embedding-profile.html and prints the table.
"""

import sys
import tempfile

import numpy as np

from resources.embedding.engine import EngineConfig
from resources.embedding.profiling import run_profile, write_report

BUDGETS = (4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288)
BATCH_SIZES = (32, 64, 128, 256, 512)


def main() -> None:
    ids_file, model_dir, out_dir = sys.argv[1:4]
    data = np.load(ids_file)
    bounds = np.cumsum(data["lengths"])[:-1]
    token_ids = [row.tolist() for row in np.split(data["flat"], bounds)]
    base = EngineConfig(model=model_dir, device="cuda", data_dir=tempfile.mkdtemp())
    profile = run_profile(token_ids, base, BUDGETS, BATCH_SIZES)
    write_report(profile, f"{out_dir}/embedding-profile.html")
    tokens = int(data["lengths"].sum())
    print(f"{profile.device} {profile.dtype}, {len(token_ids)} texts, {tokens} tokens")
    print(f"recommended budget {profile.recommended_budget}")
    print("| setting | value | tokens/s | peak MiB | padding | batches | OOMs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in profile.rows:
        print(f"| {r.kind} | {r.value:,} | {r.tokens_per_second:,.0f} | "
              f"{r.peak_memory_bytes / 2**20:,.0f} | {r.padding_fraction:.1%} | {r.batches} | "
              f"{r.ooms_recovered} |")  # fmt: skip


if __name__ == "__main__":
    main()
