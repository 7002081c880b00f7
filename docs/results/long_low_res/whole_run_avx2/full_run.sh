#!/bin/bash
# One whole run of the long schedule, AVX2 kernels forced, from the root of a scratch clone whose params.yaml
# lists only task A with `source: archive` (the shared archive's real Task A), its venv active:
#   LOG=console.log EXTRA="-S seed=101" bash full_run.sh    (EXTRA's -S come last, and the last of a name wins)
# The schedule ships 12 and 6 small epochs since these runs; the 8-and-4 run of low_res_8_4/ is
#   EXTRA="-S low_res_epochs=8 -S teacher.low_res_epochs=4"
LOG=${LOG:-console.log}
ARGS="-S seed=100 $(grep -v '^#' schedules/real_data_long.args | tr '\n' ' ') $EXTRA"
echo "# ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 /usr/bin/time -v dvc exp run --force $ARGS  (stdout and stderr; uptime at start and end)" > "$LOG"
echo "start $(date +%T) $(uptime)" >> "$LOG"
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 /usr/bin/time -v dvc exp run --force $ARGS >> "$LOG" 2>&1
echo "end $(date +%T) $(uptime)" >> "$LOG"
