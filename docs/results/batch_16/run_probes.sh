#!/bin/bash
# Batch 16 against 32 (docs/results.md, "Batch 16: ahead over 4 epochs, level over 16"): from the root of a
# scratch clone with real Task A fetched (source: archive), the side-by-side screen for 4 epochs.
R=runs.jsonl
S=docs/results/vector_lr_scale/screen.sh
bash $S $R bs16_s100 4 -- --set vector_lr_scale=10 --set seed=100 --set batch_size=16 --set ema_decay=0.999
for seed in 101 102; do
  bash $S $R bs32_s$seed 4 -- --set vector_lr_scale=10 --set seed=$seed
  bash $S $R bs16_s$seed 4 -- --set vector_lr_scale=10 --set seed=$seed --set batch_size=16 --set ema_decay=0.999
done
# the step on the AVX2 kernels: for b in 32 16; do ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \
#   moe bench --seconds 3 --batch-size $b --out bench_avx2_batch_$b.json; done
