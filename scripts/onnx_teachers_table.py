"""Distillation from teachers of any architecture, on a fetched task: the given course-CNN teachers as
.pth files, the same teachers exported to ONNX, a mix with a teacher of another architecture, and
scratch; and what the frozen teachers cost per training step. One JSON line per run.

    moe fetch --task A                     # with source: archive in params.yaml (real Task A)
    python tests/fixtures/train_onnx_teacher.py --task A --teacher trees --out resnet_trees.onnx
    python scripts/onnx_teachers_table.py --task A --teachers tests/fixtures/task_a_teachers \\
        --other trees=resnet_trees.onnx --epochs 3 cost pth onnx mixed scratch > onnx.jsonl

Runs use the MoE recipe of schedules/real_data.args (its epochs replaced by --epochs). The calls are
the pipeline's own (``initial_model``, ``train_moe``); the per-epoch test figures choose nothing.
"""

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch

from moe.base.data import load_task_split, normalize, prepare_task_data
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.checkpoints import load_teacher, read_metadata
from moe.core.folding import fold_batchnorm
from moe.core.inference import accuracy, predict
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model, train_moe
from moe.core.onnx_teachers import export_teacher
from moe.core.routing import routing_summary
from moe.core.runtime import pick_device, resolve_precision

SCHEDULE = Path("schedules/real_data.args")


def schedule_values(path: Path) -> dict:
    """The MoE's parameters of the real-data schedule (``-S name=value`` lines), values as YAML reads them."""
    import yaml

    pairs = re.findall(r"-S\s+([\w.]+)=(\S+)", "\n".join(l for l in path.read_text().splitlines() if not l.startswith("#")))
    return {k: yaml.safe_load(v) for k, v in pairs if not k.startswith("teacher.")}


def median_ms(fn, repeats: int = 20) -> float:
    fn()  # warm-up: first-call allocations and kernel choices
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def teacher_cost(spec, p, data, pth_files, onnx_files) -> dict:
    """Milliseconds per training batch: the student's whole step against each way of running the teachers."""
    from moe.core.objectives import MoEObjective
    from moe.core.methods import random_moe

    x = normalize(data.train.images[: p["batch_size"]], data.mean, data.std)
    y = data.train.labels[: p["batch_size"]]
    student = random_moe(spec, 0).train()
    optimiser = torch.optim.AdamW(student.parameters(), lr=1e-4)
    objective = settings_from(MoEObjective, p)
    objective.begin_epoch(student, 0, 1)

    def student_step():
        optimiser.zero_grad(set_to_none=True)
        objective.step(student, x, y).loss.backward()
        optimiser.step()

    torch_teachers = [fold_batchnorm(load_teacher(f, len(t.class_ids)))[0] for f, t in zip(pth_files, spec.teachers)]
    ort_teachers = [load_teacher(f, len(t.class_ids), spec.image_size) for f, t in zip(onnx_files, spec.teachers)]
    def answers(teachers):
        with torch.no_grad():
            return [t(x) for t in teachers]

    return {"batch": len(x), "student_step_ms": median_ms(student_step),
            "teachers_torch_folded_ms": median_ms(lambda: answers(torch_teachers)),
            "teachers_onnxruntime_ms": median_ms(lambda: answers(ort_teachers)),
            "threads": torch.get_num_threads()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", choices=["cost", "pth", "onnx", "mixed", "scratch"])
    parser.add_argument("--task", default="A")
    parser.add_argument("--teachers", type=Path, required=True, help="folder of teacher_<i>.pth")
    parser.add_argument("--other", required=True, help="NAME=FILE: the ONNX teacher of another architecture that "
                                                       "stands in for teacher NAME in the mixed run")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    p = load_params("params.yaml", {**schedule_values(SCHEDULE), "num_epochs": args.epochs, "method": "distill"})
    spec = load_task(Path("tasks") / f"{args.task}.yaml")
    root = Path("data") / args.task
    data = prepare_task_data(spec, root, p["val_fraction"], p["seed"], p["max_train_per_class"])
    test = load_task_split(spec, root, "test")
    device = pick_device()
    precision = resolve_precision(p["precision"], device)
    pth = [args.teachers / f"teacher_{i + 1}.pth" for i in range(spec.num_experts)]
    exported = Path(tempfile.mkdtemp(prefix="onnx_teachers_"))
    onnx = [exported / f"teacher_{i + 1}.onnx" for i in range(spec.num_experts)]
    for f, out, t in zip(pth, onnx, spec.teachers):
        meta = read_metadata(f)
        export_teacher(load_teacher(f, len(t.class_ids)), spec.image_size, out, mean=meta["mean"], std=meta["std"],
                       class_ids=list(t.local_order))
    other_name, other_file = args.other.split("=", 1)
    mixed = [Path(other_file) if t.name == other_name else f for f, t in zip(pth, spec.teachers)]

    def figures(model):
        logits, gates = predict(model, test.images, data.mean, data.std, flip=p["tta_flip"], shift=p["tta_shift"])
        return {"test": round(100 * accuracy(logits, test.labels), 2),
                "routing": routing_summary(spec, gates, test.labels)["routing_agreement"]}

    def emit(record):
        print(json.dumps({**record, "load": open("/proc/loadavg").read().split()[:3]}), flush=True)

    files_of = {"pth": pth, "onnx": onnx, "mixed": mixed, "scratch": pth}
    for run in args.runs:
        if run == "cost":
            emit({"run": "cost", **teacher_cost(spec, p, data, pth, onnx)})
            continue
        method = "scratch" if run == "scratch" else "distill"
        files = files_of[run]
        started = time.perf_counter()
        model, _ = initial_model(method, spec, files, data, settings_from(MergeSettings, p))
        model.to(device)
        start, epochs = figures(model), []
        result = train_moe(method, p, spec, model, data, files, precision, on_epoch=lambda record, m: epochs.append(
            {"epoch": record["epoch"], "val": round(record["val_accuracy"], 2), **figures(m)}))
        clock = [0.0] + [c["seconds"] for c in result.clock]
        emit({"run": run, "method": method, "teachers": [str(f) for f in files], "epochs": args.epochs,
              "kd_teacher_runtime": p["kd_teacher_runtime"],
              "start": start, "per_epoch": epochs, "best_epoch": result.best_epoch, "selected": figures(model),
              "seconds_per_epoch": [round(b - a, 1) for a, b in zip(clock, clock[1:])],
              "wall_seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
