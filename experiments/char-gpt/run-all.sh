#!/bin/sh
# The whole char-GPT experiment: every variant × seed (results/*.json, two runs at a time: tfjs wasm
# uses one thread each), then the report (docs/fp4-training-report.md and its SVG curves).
#   STEPS=300 SEEDS="1 2 3" sh experiments/char-gpt/run-all.sh
# The longer runs of the report (into results-1000/; VARIANTS="…" runs some of them):
#   STEPS=1000 SEEDS="1 2 7" OUT=results-1000 sh experiments/char-gpt/run-all.sh
set -e
cd "$(dirname "$0")/../.."
STEPS="${STEPS:-300}"
for seed in ${SEEDS:-1 2 3}; do
  for v in ${VARIANTS:-fp32 fp4-dge-occ fp4-direct fp4-dge fp4-occ}; do
    echo "$v $seed"
  done
done | xargs -P "${JOBS:-2}" -n 2 sh -c 'node --import tsx experiments/char-gpt/run.ts --variant "$0" --seed "$1" --steps '"$STEPS"' --out '"${OUT:-results}"' 2>&1 | grep -E "step|Error" | cut -c1-200'
node --import tsx experiments/char-gpt/report.ts
