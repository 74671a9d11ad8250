# One Weaviate node's time (BENCHMARKS.md, "A node's time"): the product's command over 162,000
# documents (about 1M objects) with the layout chosen there, which also leaves the pipeline's own
# chunks and vectors; then every variant of benchmarks/node_variants.py stores those into a fresh
# server, most telling first (a sequence cut short by the device time still answers the most).
echo "$(date +%T) start command-162k" >>"$results/progress"
WEAVIATE_TEXT_FILTERABLE=false WEAVIATE_COMPRESSION=rq python3 benchmarks/full_run.py \
  --docs 162000 --corpus /tmp/corpus-162k --device cuda --out /tmp/runs/command-162k \
  --via command >"$results/command-162k.log" 2>&1
echo "$(date +%T) end command-162k rc=$?" >>"$results/progress"
cp /tmp/runs/command-162k/full_run.json "$results/command-162k.json"
rm -rf /tmp/runs/command-162k/data/weaviate
echo "$(date +%T) start variants" >>"$results/progress"
python3 benchmarks/node_variants.py --run /tmp/runs/command-162k --out "$results" \
  --profile before,lean-rq --variants before,lean-rq,lean,flat-rq,hfresh-rq,lean-rq-8cpu,\
lean-rq-3nodes,lean-rq-4cpu,lean-rq-m16,lean-rq-8writers,lean-rq-batch,lean-rq-sync,rq \
  >"$results/node.log" 2>&1
echo "$(date +%T) end variants rc=$?" >>"$results/progress"
