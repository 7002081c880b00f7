"""Time the merge stage's steps on real Task A (the merge stage's own initial_model call)."""
import json, sys, time
from pathlib import Path
from moe.base.data import prepare_task_data
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model
from moe.core.runtime import resolve_precision, pick_device
import torch
changes = {k: json.loads(v) for k, v in (s.split("=", 1) for s in sys.argv[1:])}
p = load_params("params.yaml", {"batch_size": 32, **changes})
spec = load_task(Path("tasks/A.yaml"))
data = prepare_task_data(spec, Path("data/A"), p["val_fraction"], p["seed"], p["max_train_per_class"])
files = [Path("tests/fixtures/task_a_teachers") / f"teacher_{i+1}.pth" for i in range(3)]
print("precision", resolve_precision(p["precision"], pick_device()), "threads", torch.get_num_threads(), flush=True)
t = time.perf_counter()
model, report = initial_model("moe", spec, files, data, settings_from(MergeSettings, p), say=lambda s: print(f"{time.perf_counter()-t:7.1f} {s}", flush=True))
print(json.dumps({"total": round(time.perf_counter()-t, 1), "seconds": report.seconds, "val_merged": report.merged_val_accuracy,
  "val_random": report.random_val_accuracy, "odds": report.odds_ratio, "load": open("/proc/loadavg").read().split()[:3]}))
