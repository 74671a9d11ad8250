#!/usr/bin/env bash
# One GPU session for the embedding engine: the GPU tests, then the throughput table.
# Usage (repository root): benchmarks/embedding_gpu_run.sh MODEL_DIR OUT_DIR
set -uo pipefail
model=$(realpath "$1")
out=$2
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 EMBEDDING_TEST_MODEL="$model"
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True TOKENIZERS_PARALLELISM=true
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv
python3 -c "import torch, transformers, sentence_transformers as st, tokenizers; \
print('torch', torch.__version__, 'transformers', transformers.__version__, \
'sentence-transformers', st.__version__, 'tokenizers', tokenizers.__version__)"
timeout 300 python3 -m pytest tests/resources/embedding/test_gpu.py -q -s -p no:cacheprovider \
  --confcutdir=tests/resources/embedding 2>&1 | tee "$out/gpu_tests.log"
timeout 400 python3 benchmarks/embedding_throughput.py --model "$model" "${@:3}" \
  --json "$out/bench.json" 2>&1 | grep --line-buffered -v "Loading weights" | tee "$out/bench.log"
