# The product's command at 2M objects beside the harness's best arrangement (BENCHMARKS.md,
# "Files to searchable"), then a UI backfill at 500k objects beside the same.
run() {  # NAME DOCS full_run.py options...
  local name=$1 docs=$2; shift 2
  echo "$(date +%T) start $name" >>"$results/progress"
  python3 benchmarks/full_run.py --docs "$docs" --corpus "/tmp/corpus-$docs" --device cuda \
    --out "/tmp/runs/$name" "$@" >"$results/$name.log" 2>&1
  echo "$(date +%T) end $name rc=$?" >>"$results/progress"
  cp "/tmp/runs/$name/full_run.json" "$results/$name.json" 2>/dev/null
  rm -rf "/tmp/runs/$name/data"
}
run command-320k 320000 --via command
run harness-320k 320000 --via runs --shards-per-run 8 --concurrent-runs 4
run ui-80k 80000 --via ui
run harness-80k 80000 --via runs --shards-per-run 8 --concurrent-runs 4
run command-80k-sync 80000 --via command --indexing sync
