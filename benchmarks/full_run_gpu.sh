#!/usr/bin/env bash
# benchmarks/full_run.py on the GPU machine, whose image lacks Dagster and weaviate-client: the
# packages from benchmarks/gpu_wheels.sh and the model directory travel with the call.
# Usage (repository root): benchmarks/full_run_gpu.sh MODEL_DIR OUT_DIR [full_run.py options]
set -euo pipefail
model=$(realpath "$1")
out=$2
mkdir -p /tmp/site && tar xJf .whl/site.tar.xz -C /tmp/site
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 EMBEDDING_MODEL=$model
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 benchmarks/full_run.py --out "$out" --device cuda "${@:3}"
