#!/bin/bash
# One probe run of "airbench's optimizer, stronger smoothing, skipped easy images" (docs/results.md):
# from the root of a scratch clone with real Task A fetched (source: archive, `moe fetch --task A`) and
# probe.patch applied (git apply docs/results/airbench_screen/probe.patch; not part of the pipeline).
#   bash docs/results/airbench_screen/screen.sh TAG EPOCHS [VAR=value ...] -- [--set NAME=JSON ...]
# e.g. screen.sh sgd01 3 OPT=sgd SGD_LR=0.01 --      screen.sh sbr40_16 16 SB_DROP=0.4 SB_ROTATE=1 --
# Appends one line {"tag": TAG, "rec": <merge_table's record>} to runs.jsonl, uptime to runs_uptime.log.
tag=$1; stop=$2; shift 2
envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
echo "$(date +%T) $tag start $(uptime)" >> runs_uptime.log
env "${envs[@]}" PYTHONPATH=. python scripts/merge_table.py --task A --teachers tests/fixtures/task_a_teachers \
  --epochs 16 --stop-after "$stop" --methods moe --set lr=0.001 --set warmup_epochs=1.0 --set label_smoothing=0.1 \
  --set ema_decay=0.998 --set 'weight_decay_scope="matrices"' --set low_res_epochs=1 "$@" train 2> "screen_$tag.err" \
  | sed "s/^/{\"tag\": \"$tag\", \"rec\": /; s/\$/}/" >> runs.jsonl
echo "$(date +%T) $tag end $(uptime)" >> runs_uptime.log
