#!/bin/bash
# The long schedule with more small epochs, whole pipeline, AVX2 kernels forced; in /work/scratch/full
cd /work/scratch/full && . /work/main/.venv/bin/activate
LOG=${LOG:-/work/scratch/full_console.log}
ARGS="-S seed=100 $(grep -v '^#' schedules/real_data_long.args | tr '\n' ' ') $EXTRA"
echo "# ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 /usr/bin/time -v dvc exp run --force $ARGS  (stdout and stderr; uptime at start and end)" > $LOG
echo "start $(date +%T) $(uptime)" >> $LOG
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 /usr/bin/time -v dvc exp run --force $ARGS >> $LOG 2>&1
echo "end $(date +%T) $(uptime)" >> $LOG
