#!/usr/bin/env bash
# A sequence of benchmark runs on one GPU machine, in a process of its own session that outlives
# a device call on a warm machine, with the server binary, wheels and model carried in.
#
#   benchmarks/gpu_machine.sh server                # a call carrying .gpu_server (the xz'd binary)
#   benchmarks/gpu_machine.sh start SEQUENCE        # the next, carrying .whl and .gpu_model
#   benchmarks/gpu_machine.sh status [SECONDS]      # later calls: waits, then what is done; the
#                                                   # results (*.json, *.pprof, logs) in
#                                                   # $OUT/results.tgz
#
# SEQUENCE is a file of benchmarks/sequences/: user_paths.sh, the user's paths beside the
# harness (BENCHMARKS.md "Fast by default"); node.sh, one Weaviate node's variants ("A node's
# time"); node_rest.sh, the variants that section lists as not measured.
# What travels is capped at 64 MiB a call: the server binary (57 MiB of xz, made here with
# `xz -6 -c $(weaviate-indexer weaviate install | cut -d' ' -f4) > .gpu_server/weaviate.xz`) goes
# alone; the wheels of benchmarks/gpu_wheels.sh and the model of benchmarks/gpu_model.py go next.
set -euo pipefail
results=/tmp/sequence-results
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
  mkdir /tmp/repo && cp -r assets orchestration resources benchmarks tests workspace.yaml \
    deploy pyproject.toml /tmp/repo/
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  {
    echo 'set -u'
    echo 'export PYTHONPATH=/tmp/site:/tmp/repo HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 \'
    echo '  EMBEDDING_MODEL=/tmp/model WEAVIATE_INDEXER_CACHE=/tmp/wcache'
    echo "results=$results"
    echo 'cd /tmp/repo'
    cat "$2"
    echo 'echo "$(date +%T) all done" >>"$results/progress"'
  } >/tmp/repo/sequence.sh
  setsid bash /tmp/repo/sequence.sh >"$results/sequence.log" 2>&1 </dev/null &
  sleep 5; cat "$results/progress" 2>/dev/null || true
  ;;
status)
  sleep "${2:-0}"
  cat "$results/progress" || true
  # One archive: what comes back from a call is capped at 8 files.
  (cd "$results" && tar czf "$OUT/results.tgz" $(ls -- *.json *.pprof *.log 2>/dev/null)) || true
  for log in "$results"/*.log; do echo "== $log"; tail -c 600 "$log"; done
  free -g | head -2; df -h /tmp | tail -1; nvidia-smi --query-gpu=utilization.gpu --format=csv
  ;;
esac
