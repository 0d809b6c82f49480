#!/bin/sh
# The whole transfer experiment: pretraining, then every variant × seed (results/*.json), then the report.
set -e
cd "$(dirname "$0")/../.."
node --import tsx experiments/binary-transfer/run.ts pretrain --steps "${PRETRAIN_STEPS:-600}"
for seed in 1 2 3; do
  for v in qat psq1 scq4 psq8; do
    node --import tsx experiments/binary-transfer/run.ts finetune --variant "$v" --seed "$seed" --steps "${FINETUNE_STEPS:-250}"
  done
done
node --import tsx experiments/binary-transfer/report.ts
