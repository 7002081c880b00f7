"""One teacher of a task trained the way `pretrain` trains it, with its own-class test accuracy after
every epoch: to weigh a teacher recipe against another. One JSON line per run.

    moe fetch --task A                     # with source: archive in params.yaml (real Task A)
    python scripts/teacher_recipe.py --task A --teacher 1 --set teacher.epochs=12 --set teacher.lr=0.002 \\
        --set teacher.batch_size=32 --set teacher.label_smoothing=0.1 --set weight_decay_scope='"matrices"'

The calls are pretrain's own (``prepare_teacher_data``, ``fit``, ``CrossEntropy``); only the
per-epoch test figure is extra, and the test set chooses nothing.
"""

import argparse
import json
from pathlib import Path

from moe.base.data import prepare_task_data, prepare_teacher_data
from moe.base.params import load_params
from moe.base.tasks import load_task
from moe.core.inference import accuracy, predict
from moe.core.models import TeacherCNN
from moe.core.objectives import CrossEntropy
from moe.core.runtime import pick_device, resolve_precision, seed_everything
from moe.core.training import TrainConfig, fit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="A")
    parser.add_argument("--teacher", type=int, default=1, help="which teacher, counted from 1")
    parser.add_argument("--set", action="append", default=[], help="NAME=JSON, a parameter changed")
    args = parser.parse_args()
    p = load_params("params.yaml", {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)})
    spec = load_task(Path("tasks") / f"{args.task}.yaml")
    root, i = Path("data") / args.task, args.teacher - 1
    merged = prepare_task_data(spec, root, p["val_fraction"], p["seed"], p["max_train_per_class"])
    train, val, test = prepare_teacher_data(spec, root, i, merged, p["max_train_per_class"], p["seed"])
    device = pick_device()
    seed_everything(p["seed"] + i)  # as pretrain seeds teacher i
    model = TeacherCNN(len(spec.teachers[i].class_ids)).to(device)
    cfg = TrainConfig(num_epochs=p["teacher.epochs"], lr=p["teacher.lr"], weight_decay=p["weight_decay"],
                      patience=p["teacher.epochs"], batch_size=p["teacher.batch_size"], seed=p["seed"] + i,
                      warmup_epochs=p["teacher.warmup_epochs"], weight_decay_scope=p["weight_decay_scope"],
                      ema_decay=0.0, precision=resolve_precision(p["precision"], device))
    per_epoch = []

    def on_epoch(record, m):
        logits, _ = predict(m, test.images, merged.mean, merged.std)
        per_epoch.append({"epoch": record["epoch"], "val": round(record["val_accuracy"], 2),
                          "test": round(100 * accuracy(logits, test.labels), 2)})

    result = fit(model, CrossEntropy(p["teacher.label_smoothing"]), train, val, cfg, merged.mean, merged.std,
                 on_epoch=on_epoch)
    logits, _ = predict(model, test.images, merged.mean, merged.std)
    print(json.dumps({"teacher": spec.teachers[i].name, "changes": args.set, "per_epoch": per_epoch,
                      "best_epoch": result.best_epoch, "selected_test": round(100 * accuracy(logits, test.labels), 2),
                      "seconds": round(result.clock[-1]["seconds"], 1),
                      "load": open("/proc/loadavg").read().split()[:3]}), flush=True)


if __name__ == "__main__":
    main()
