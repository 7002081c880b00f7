"""Probe: after each small-image epoch, does re-estimating BatchNorm statistics at full size recover
full-size accuracy? Test figures plain, with BN re-estimated on 8 and 32 training batches.

Run before the change (probe_before_the_change.jsonl), when ``recalibrate_batchnorm`` put the whole
module in training mode (dropout and gate noise on); it now trains only the BatchNorms.
    PYTHONPATH=<clone with real Task A> python probe_bn.py STOP_AFTER name=value ...   (in that clone)"""
import copy, json, sys, time
from pathlib import Path
import torch
from moe.base.data import load_task_split, prepare_task_data
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.inference import accuracy, predict
from moe.core.folding import calibration_batches, recalibrate_batchnorm
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model, train_moe
from moe.core.runtime import pick_device, resolve_precision

changes = {k: json.loads(v) for k, v in (s.split("=", 1) for s in sys.argv[2:])}
stop_after = int(sys.argv[1])
p = load_params("params.yaml", {"batch_size": 32, **changes})
spec = load_task(Path("tasks/A.yaml"))
data = prepare_task_data(spec, Path("data/A"), p["val_fraction"], p["seed"], p["max_train_per_class"])
test = load_task_split(spec, Path("data/A"), "test")
files = [Path("tests/fixtures/task_a_teachers") / f"teacher_{i+1}.pth" for i in range(3)]
device = pick_device()
def acc(m, images, labels):
    logits, _ = predict(m, images, data.mean, data.std)
    return round(100 * accuracy(logits, labels), 2)
started = time.perf_counter()
model, report = initial_model("moe", spec, files, data, settings_from(MergeSettings, p))
print(json.dumps({"merged_test": acc(model, test.images, test.labels), "merge_s": round(time.perf_counter() - started, 1)}), flush=True)
class Stop(Exception): pass
n = [0]
def on_epoch(record, m):
    row = {"epoch": record["epoch"], "size": record.get("image_size"), "val": round(record["val_accuracy"], 2),
           "test": acc(m, test.images, test.labels)}
    for batches in (8, 32):
        c = copy.deepcopy(m)
        recalibrate_batchnorm(c, calibration_batches(data.train.images, data.mean, data.std, 7, batches, 32, device))
        c.eval()
        row[f"test_bn{batches}"] = acc(c, test.images, test.labels)
        row[f"val_bn{batches}"] = acc(c, data.val.images, data.val.labels)
    print(json.dumps(row), flush=True)
    n[0] += 1
    if n[0] == stop_after:
        raise Stop
try:
    train_moe("moe", p, spec, model, data, files, resolve_precision(p["precision"], device), on_epoch=on_epoch)
except Stop:
    pass
