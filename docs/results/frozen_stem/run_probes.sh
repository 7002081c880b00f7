#!/bin/bash
# The frozen-stem probe (docs/results.md, "The backbone's first blocks frozen for the first epochs"): from
# the root of a scratch clone with real Task A fetched (source: archive) and frozen_stem.patch applied,
# the side-by-side screen of seed 100 for 5 epochs, plain and with the first 3 or all 5 epochs frozen.
R=runs.jsonl
S=docs/results/vector_lr_scale/screen.sh
bash $S $R base_s100 5 -- --set vector_lr_scale=10 --set seed=100
bash $S $R freeze3_s100 5 FREEZE_EPOCHS=3 -- --set vector_lr_scale=10 --set seed=100
bash $S $R freeze5_s100 5 FREEZE_EPOCHS=5 -- --set vector_lr_scale=10 --set seed=100
