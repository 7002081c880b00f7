#!/bin/bash
# Batch 16 against 32 over the whole 16-epoch screen (docs/results.md, "Batch 16: ahead over 4 epochs, level over 16"):
# from the root of a scratch clone with real Task A fetched (source: archive), one run at a time.
R=sixteen_epochs.jsonl
S=docs/results/vector_lr_scale/screen.sh
for seed in 100 101; do
  bash $S $R bs16_s$seed 16 -- --set vector_lr_scale=10 --set seed=$seed --set batch_size=16 --set ema_decay=0.999
  bash $S $R bs32_s$seed 16 -- --set vector_lr_scale=10 --set seed=$seed
done
