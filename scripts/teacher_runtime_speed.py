"""Seconds of one short training epoch: moe, and distill with its frozen teachers run by torch or by
ONNX Runtime (``kd_teacher_runtime``). The pipeline's own ``train_moe``; its clock counts the loop.

    moe fetch --task A                     # with source: archive in params.yaml (real Task A)
    for run in "moe pth auto" "distill pth torch" "distill pth onnxruntime" "distill onnx auto"; do
        python scripts/teacher_runtime_speed.py --teachers tests/fixtures/task_a_teachers $run
    done

``onnx``: the same teachers exported to ONNX first (as ONNX teachers of a task would be).
"""

import argparse
import tempfile
import time
from pathlib import Path

from moe.base.data import prepare_task_data
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.checkpoints import load_teacher, read_metadata
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model, train_moe
from moe.core.onnx_teachers import export_teacher


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=["moe", "distill"])
    parser.add_argument("files", choices=["pth", "onnx"])
    parser.add_argument("runtime", choices=["auto", "torch", "onnxruntime"])
    parser.add_argument("--task", default="A")
    parser.add_argument("--teachers", type=Path, required=True, help="folder of teacher_<i>.pth")
    parser.add_argument("--per-class", type=int, default=60, help="training images per class")
    args = parser.parse_args()
    p = load_params("params.yaml", {"batch_size": 32, "num_epochs": 1, "lr": 0.001, "method": args.method,
                                    "max_train_per_class": args.per_class, "kd_teacher_runtime": args.runtime})
    spec = load_task(Path("tasks") / f"{args.task}.yaml")
    data = prepare_task_data(spec, Path("data") / args.task, p["val_fraction"], p["seed"], p["max_train_per_class"])
    pth = [args.teachers / f"teacher_{i + 1}.pth" for i in range(spec.num_experts)]
    files = pth
    if args.files == "onnx":
        folder = Path(tempfile.mkdtemp(prefix="teachers_"))
        files = [folder / f"teacher_{i + 1}.onnx" for i in range(spec.num_experts)]
        for f, out, t in zip(pth, files, spec.teachers):
            meta = read_metadata(f)
            export_teacher(load_teacher(f, len(t.class_ids)), spec.image_size, out, mean=meta["mean"],
                           std=meta["std"], class_ids=list(t.local_order))
    # the same start for every run: the plain merge of the .pth teachers
    plain = {**p, "merge.alignment": "none", "merge.router_init": "fresh", "merge.classifier_fit_steps": 0}
    model, _ = initial_model("moe", spec, pth, data, settings_from(MergeSettings, plain))
    started = time.perf_counter()
    result = train_moe(args.method, p, spec, model, data, files, "fp32")
    print(args.method, args.files, args.runtime, len(data.train), "train s", round(result.clock[-1]["seconds"], 1),
          "wall", round(time.perf_counter() - started, 1), flush=True)


if __name__ == "__main__":
    main()
