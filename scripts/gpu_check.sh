#!/usr/bin/env bash
# The real-data Task A run with the original project's parameters, on whatever accelerator this machine
# has (made for a GPU): the shared archive, teachers trained here, MoE 100 epochs, batch 32, lr 0.001,
# patience 20. Prints wall time per stage, training images/s and the test accuracy.
#
#   bash scripts/gpu_check.sh [ARCHIVE]          (default ../shared/data/cas771-standin.zip)
#   PROCESSES=4 bash scripts/gpu_check.sh        train on 4 GPUs under torchrun (one process each)
#
# It works in a scratch copy of the tracked files (WORKDIR, default a new temporary folder), so the
# checkout's own outputs are untouched. Needs the project installed (bash run.sh test, or pip install -e .).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
archive="$(realpath "${1:-$here/../shared/data/cas771-standin.zip}")"
work="${WORKDIR:-$(mktemp -d)}"
processes="${PROCESSES:-1}"
export LIMIT="${LIMIT:-0}"
teacher_epochs="${TEACHER_EPOCHS:-30}"
epochs="${EPOCHS:-100}"  # EPOCHS=1 TEACHER_EPOCHS=1 LIMIT=20: a quick try of the script itself
limit="${LIMIT:-0}"

[ -e "$archive" ] || { echo "gpu_check: $archive: archive not found" >&2; exit 1; }
(cd "$here" && git ls-files -z | xargs -0 cp --parents -t "$work")
cd "$work"
export PYTHONPATH="$work"
python - <<'PY'
import torch
print(f"torch {torch.__version__}; device: " + (torch.cuda.get_device_name(0) + f" x{torch.cuda.device_count()}"
      if torch.cuda.is_available() else "CPU only (this check is meant for a GPU)"))
PY

timed() {  # timed NAME COMMAND...: run it, print its wall time
  local name="$1" start end; shift
  start=$(date +%s.%N); "$@"; end=$(date +%s.%N)
  awk -v n="$name" -v a="$start" -v b="$end" 'BEGIN { printf "%s wall time: %.1f s\n", n, b - a }' | tee -a gpu_check.times
}

timed fetch moe fetch --task A --source archive --archive "$archive"
timed pretrain moe pretrain --task A --teacher-epochs "$teacher_epochs" --teacher-batch-size 32 --teacher-lr 0.001 \
  --max-train-per-class "$limit" --processes "$processes"
timed merge moe merge --task A --batch-size 32 --max-train-per-class "$limit"
timed train moe train --task A --num-epochs "$epochs" --lr 0.001 --batch-size 32 --patience 20 --expert-analysis-interval 10 \
  --max-train-per-class "$limit" --processes "$processes" --precision auto
timed evaluate moe evaluate --task A

python - <<'PY'
import json, os, re
import yaml
from moe.core.checkpoints import read_metadata
from moe.base.data import prepare_task_data
from moe.base.tasks import load_task

spec = load_task("tasks/A.yaml")
meta = read_metadata("models/A/merged_moe.pth")
epochs = len(meta["history"])
params = yaml.safe_load(open("params.yaml"))  # the split the train stage made (LIMIT was its option)
images = len(prepare_task_data(spec, "data/A", params["val_fraction"], params["seed"], int(os.environ["LIMIT"])).train)
train_s = float(re.search(r"^train wall time: ([\d.]+)", open("gpu_check.times").read(), re.M).group(1))
accuracy = json.load(open("metrics/A.json"))["accuracy"]
print(f"MoE: {epochs} epochs (best {meta['best_epoch']}) on {images} training images in {train_s:.0f} s of the train "
      f"stage: {epochs * images / train_s:.0f} images/s (validation and start-up included)")
print(f"test accuracy on real Task A: {accuracy:.2f} % ({json.load(open('metrics/A.json'))['images']} images)")
PY
echo "outputs in $work"
