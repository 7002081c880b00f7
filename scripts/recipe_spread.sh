#!/usr/bin/env bash
# Each part of the real-data MoE recipe alone, all together, and the gating temperature held constant,
# over several seeds: the spread that says which differences are real. One JSON line per run
# (scripts/merge_table.py train); `python scripts/spread_table.py FILE` makes the table.
#   moe fetch --task A      # in a clone with source: archive (real Task A)
#   bash scripts/recipe_spread.sh tests/fixtures/task_a_teachers 3 "100 101 102" > spread.jsonl
set -euo pipefail
teachers=${1:?folder of teacher_<i>.pth} epochs=${2:-3} seeds=${3:-"100 101 102"}
base=(--set lr=0.001)  # the original's learning rate; merge_table.py uses the original's batch of 32
recipe=(--set warmup_epochs=1.0 --set label_smoothing=0.1 --set ema_decay=0.998 --set 'weight_decay_scope="matrices"')
configs=(
  ""                                                   # the original's recipe
  "--set warmup_epochs=1.0"
  "--set label_smoothing=0.1"
  "--set ema_decay=0.998"
  "--set weight_decay_scope=\"matrices\""
  "${recipe[*]}"
  "${recipe[*]} --set initial_temperature=1.0 --set final_temperature=1.0"
)
for seed in $seeds; do
  for config in "${configs[@]}"; do
    eval "extra=($config)"
    python scripts/merge_table.py --task A --teachers "$teachers" --epochs "$epochs" --methods moe \
      "${base[@]}" --set seed="$seed" "${extra[@]}" train
  done
done
