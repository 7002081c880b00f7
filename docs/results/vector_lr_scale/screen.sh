#!/bin/bash
# One run of "BatchNorm parameters and biases at ten times the rate" (docs/results.md): the side-by-side
# command (16-epoch schedule, small first epoch) from the root of a scratch clone with real Task A
# fetched (source: archive, `moe fetch --task A`), test figures after every epoch.
#   bash docs/results/vector_lr_scale/screen.sh RECORDS TAG EPOCHS [VAR=value ...] -- [--set NAME=JSON ...]
# e.g. screen.sh runs.jsonl x10_s101 16 -- --set vector_lr_scale=10 --set seed=101
#      screen.sh runs.jsonl avx2_x1 16 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 -- --set 'precision="fp32"'
# Appends {"tag": TAG, "rec": <merge_table's record>} to RECORDS, the load at start and end to RECORDS.uptime.
records=$1; tag=$2; stop=$3; shift 3
envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
echo "$(date +%T) $tag start $(uptime)" >> "$records.uptime"
env "${envs[@]}" PYTHONPATH=. python scripts/merge_table.py --task A --teachers tests/fixtures/task_a_teachers \
  --epochs 16 --stop-after "$stop" --methods moe --set lr=0.001 --set warmup_epochs=1.0 --set label_smoothing=0.1 \
  --set ema_decay=0.998 --set 'weight_decay_scope="matrices"' --set low_res_epochs=1 "$@" train 2> "$records.$tag.err" \
  | sed "s/^/{\"tag\": \"$tag\", \"rec\": /; s/\$/}/" >> "$records"
echo "$(date +%T) $tag end $(uptime)" >> "$records.uptime"
