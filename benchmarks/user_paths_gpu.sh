#!/usr/bin/env bash
# The user's paths beside the harness on one GPU machine (BENCHMARKS.md, "Fast by default"):
# benchmarks/full_run.py by `--via command`, `ui` and `runs` on the same corpora, one after
# another, in a process of its own session that outlives a device call on a warm machine.
#
#   benchmarks/user_paths_gpu.sh server       # a call carrying .gpu_server (the xz'd binary)
#   benchmarks/user_paths_gpu.sh start        # the next, carrying .whl and .gpu_model
#   benchmarks/user_paths_gpu.sh status       # later calls: what is done, results under $OUT
#
# What travels is capped at 64 MiB a call: the server binary (57 MiB of xz, made here with
# `xz -6 -c $(weaviate-indexer weaviate install | cut -d' ' -f4) > .gpu_server/weaviate.xz`) goes
# alone; the wheels of benchmarks/gpu_wheels.sh and the model of benchmarks/gpu_model.py go next.
set -euo pipefail
results=/tmp/user-paths
case "$1" in
server)
  mkdir -p /tmp/wcache
  # The file name resources/weaviate/server.py looks for (weaviate-client's embedded convention).
  tag=v$(sed -n 's/^WEAVIATE_VERSION = "\(.*\)"/\1/p' resources/weaviate/server.py)
  name=weaviate-$tag-$(printf %s "$tag" | sha256sum | cut -d' ' -f1)
  xz -dc .gpu_server/weaviate.xz >"/tmp/wcache/$name" && chmod 755 "/tmp/wcache/$name"
  ls -la /tmp/wcache; nproc; free -g | head -2; df -h /tmp | tail -1
  ;;
start)
  mkdir -p /tmp/site "$results" && tar xJf .whl/site.tar.xz -C /tmp/site
  rm -rf /tmp/model /tmp/repo && cp -r .gpu_model /tmp/model
  mkdir /tmp/repo && cp -r assets orchestration resources benchmarks workspace.yaml \
    deploy pyproject.toml /tmp/repo/
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  cat >/tmp/repo/sequence.sh <<'SEQ'
set -u
export PYTHONPATH=/tmp/site:/tmp/repo HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 \
  EMBEDDING_MODEL=/tmp/model WEAVIATE_INDEXER_CACHE=/tmp/wcache
cd /tmp/repo
run() {  # NAME DOCS full_run.py options...
  local name=$1 docs=$2; shift 2
  echo "$(date +%T) start $name" >>/tmp/user-paths/progress
  python3 benchmarks/full_run.py --docs "$docs" --corpus "/tmp/corpus-$docs" --device cuda \
    --out "/tmp/runs/$name" "$@" >"/tmp/user-paths/$name.log" 2>&1
  echo "$(date +%T) end $name rc=$?" >>/tmp/user-paths/progress
  cp "/tmp/runs/$name/full_run.json" "/tmp/user-paths/$name.json" 2>/dev/null
  rm -rf "/tmp/runs/$name/data"
}
# The product's command at 2M objects beside the harness's best arrangement (BENCHMARKS.md,
# "Files to searchable"), then a UI backfill at 500k objects beside the same.
run command-320k 320000 --via command
run harness-320k 320000 --via runs --shards-per-run 8 --concurrent-runs 4
run ui-80k 80000 --via ui
run harness-80k 80000 --via runs --shards-per-run 8 --concurrent-runs 4
run command-80k-sync 80000 --via command --indexing sync
echo "$(date +%T) all done" >>/tmp/user-paths/progress
SEQ
  setsid bash /tmp/repo/sequence.sh >/dev/null 2>&1 </dev/null &
  sleep 5; cat "$results/progress"
  ;;
status)
  cat "$results/progress" || true
  cp "$results"/*.json "$OUT"/ 2>/dev/null || true
  for log in "$results"/*.log; do echo "== $log"; tail -c 600 "$log"; done
  free -g | head -2; df -h /tmp | tail -1; nvidia-smi --query-gpu=utilization.gpu --format=csv
  ;;
esac
