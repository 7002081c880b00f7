#!/usr/bin/env bash
# Each part of the real-data MoE recipe alone, all together, and the gating temperature held constant,
# over several seeds: the spread that says which differences are real. One JSON line per run
# (scripts/merge_table.py train); `python scripts/spread_table.py FILE` makes the table.
#   moe fetch --task A      # in a clone with source: archive (real Task A)
#   bash scripts/recipe_spread.sh tests/fixtures/task_a_teachers 3 "100 101 102" > spread.jsonl
#   (a fourth argument, e.g. "1 6", runs only those settings)
set -euo pipefail
teachers=${1:?folder of teacher_<i>.pth} epochs=${2:-3} seeds=${3:-"100 101 102"}
only=${4:-}  # optional: run only the settings whose numbers (1-7, as listed below) are given, e.g. "1 6"
# each setting: NAME=JSON changes (no spaces inside one), on top of lr 0.001 and merge_table.py's batch of 32
recipe='warmup_epochs=1.0 label_smoothing=0.1 ema_decay=0.998 weight_decay_scope="matrices"'
settings=(
  ""                                                   # 1: the original's recipe
  "warmup_epochs=1.0"                                  # 2-5: each part alone
  "label_smoothing=0.1"
  "ema_decay=0.998"
  'weight_decay_scope="matrices"'
  "$recipe"                                            # 6: all four
  "$recipe initial_temperature=1.0 final_temperature=1.0"   # 7: all four, the gating temperature held at 1
)
for seed in $seeds; do
  for i in "${!settings[@]}"; do
    if [ -n "$only" ] && [[ " $only " != *" $((i + 1)) "* ]]; then continue; fi
    args=()
    for change in ${settings[$i]}; do args+=(--set "$change"); done
    python scripts/merge_table.py --task A --teachers "$teachers" --epochs "$epochs" --methods moe \
      --set lr=0.001 --set seed="$seed" "${args[@]}" train
  done
done
