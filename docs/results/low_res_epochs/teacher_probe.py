"""Train teacher i of task A as pretrain does (real-data teacher settings), with the first K epochs on
half-size images; print own-class test accuracy and seconds."""
import sys, time, json
from pathlib import Path
import torch
from moe.base.data import prepare_task_data, prepare_teacher_data
from moe.base.tasks import load_task
from moe.core.models import TeacherCNN
from moe.core.objectives import CrossEntropy
from moe.core.runtime import seed_everything, resolve_precision, pick_device
from moe.core.training import TrainConfig, fit
from moe.core.inference import accuracy, predict

i, low_res, precision = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
spec = load_task(Path("tasks/A.yaml")); root = Path("data/A")
merged = prepare_task_data(spec, root, 0.1, 100, 0)
train_set, val_set, test_set = prepare_teacher_data(spec, root, i, merged, 0, 100)
seed_everything(100 + i)
model = TeacherCNN(len(spec.teachers[i].class_ids))
cfg = TrainConfig(num_epochs=12, lr=0.002, weight_decay=1e-4, patience=12, batch_size=32, seed=100 + i, warmup_epochs=1.0,
                  weight_decay_scope="matrices", ema_decay=0.0, precision=precision, low_res_epochs=low_res)
t = time.perf_counter()
res = fit(model, CrossEntropy(0.1), train_set, val_set, cfg, merged.mean, merged.std)
sec = time.perf_counter() - t
logits, _ = predict(model, test_set.images, merged.mean, merged.std, precision=precision)
print(json.dumps({"teacher": i + 1, "low_res_epochs": low_res, "precision": precision, "seconds": round(sec, 1),
                  "own_test": round(100 * accuracy(logits, test_set.labels), 2),
                  "val": [round(r["val_accuracy"], 2) for r in res.history]}), flush=True)
