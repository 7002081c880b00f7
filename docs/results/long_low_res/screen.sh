#!/bin/bash
# One MoE run of the long schedule's training part (schedules/real_data_long.args: 32 epochs, lr 0.001,
# one warmup epoch, label smoothing 0.1, ema 0.998, decay on matrices, vector_lr_scale 10) on the given
# teachers, with K of its first epochs on half-size crops; test figures after every epoch. From the root
# of a scratch clone with real Task A fetched (source: archive, `moe fetch --task A`):
#   bash docs/results/long_low_res/screen.sh RECORDS TAG K [VAR=value ...] -- [merge_table options ...]
# e.g. screen.sh runs.jsonl k8_s100 8 -- --set seed=100
#      screen.sh runs.jsonl k12_s100_plain 12 -- --epoch-views plain --set seed=100
# (the runs of moe_32_epochs_bf16.jsonl; `--epoch-views plain` scores each epoch on the plain test image
# only, a sixth of the passes, and the selected model on every view)
# Appends {"tag": TAG, "rec": <merge_table's record>} to RECORDS, the load at start and end to RECORDS.uptime.
records=$1; tag=$2; small=$3; shift 3
envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
echo "$(date +%T) $tag start $(uptime)" >> "$records.uptime"
env "${envs[@]}" PYTHONPATH=. python scripts/merge_table.py --task A --teachers tests/fixtures/task_a_teachers \
  --epochs 32 --methods moe --set lr=0.001 --set warmup_epochs=1.0 --set label_smoothing=0.1 \
  --set ema_decay=0.998 --set 'weight_decay_scope="matrices"' --set vector_lr_scale=10 \
  --set low_res_epochs="$small" --set tta_flip=true --set tta_shift=1 "$@" train 2> "$records.$tag.err" \
  | sed "s/^/{\"tag\": \"$tag\", \"rec\": /; s/\$/}/" >> "$records"
echo "$(date +%T) $tag end $(uptime)" >> "$records.uptime"
