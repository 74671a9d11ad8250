# What "A node's time" (BENCHMARKS.md) lists as not measured: the product's command with the
# default layout (which also leaves the chunks and vectors), the variants left (those that may
# change a default first), then the command with a flat index; the GPU tests first.
command() {  # NAME full_run.py options...
  local name=$1; shift
  echo "$(date +%T) start $name" >>"$results/progress"
  python3 benchmarks/full_run.py --docs 162000 --corpus /tmp/corpus-162k --device cuda \
    --out "/tmp/runs/$name" --via command "$@" >"$results/$name.log" 2>&1
  echo "$(date +%T) end $name rc=$?" >>"$results/progress"
  cp "/tmp/runs/$name/full_run.json" "$results/$name.json"
  rm -rf "/tmp/runs/$name/data/weaviate"
}
EMBEDDING_TEST_MODEL=/tmp/model timeout 300 python3 -m pytest tests/resources/embedding/test_gpu.py \
  -q -s -p no:cacheprovider --confcutdir=tests/resources/embedding >"$results/gpu_tests.log" 2>&1
echo "$(date +%T) gpu tests rc=$?" >>"$results/progress"
command command-162k
echo "$(date +%T) start variants" >>"$results/progress"
python3 benchmarks/node_variants.py --run /tmp/runs/command-162k --out "$results" \
  --variants lean-rq-ef64-8writers,rq,lean-rq-4cpu,lean-rq-3x4cpu >"$results/node.log" 2>&1
echo "$(date +%T) end variants rc=$?" >>"$results/progress"
WEAVIATE_VECTOR_INDEX=flat command command-162k-flat
