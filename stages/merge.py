"""merge: initialise the MoE from the teachers and re-estimate the backbone's BatchNorm statistics."""

from pathlib import Path

import typer

from moe.checkpoints import load_teacher, save_model
from moe.data import prepare_task_data
from moe.formats import save_json
from moe.inference import accuracy, predict
from moe.merge import merge_and_calibrate, random_moe

from .common import PARAMS_OPTION, TASK_OPTION, Paths, reads, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("merge")
@stage
@reads("bn_recalibration_batches", "classifier_from_teachers", "gate_noise_std", "max_train_per_class",
       "val_fraction", "seed", "batch_size", "method")
def merge_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Backbone = mean of the teachers' backbones, expert i = teacher i's last block, fresh router."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    data = prepare_task_data(spec, paths.data, p["val_fraction"], p["seed"], p["max_train_per_class"])
    if p["method"] == "scratch":  # the same architecture from random weights: what the teachers are worth
        model, seen = random_moe(spec, p["seed"], p["gate_noise_std"]), 0
    else:
        teachers = [load_teacher(paths.teacher(i), len(t.class_ids)) for i, t in enumerate(spec.teachers)]
        model, seen = merge_and_calibrate(spec, teachers, data, p["seed"], p["bn_recalibration_batches"],
                                          p["batch_size"], p["gate_noise_std"], p["classifier_from_teachers"])
    acc = 100.0 * accuracy(predict(model, data.val.images, data.mean, data.std)[0], data.val.labels)
    save_model(paths.merged, model, data.mean, data.std, spec.class_ids, spec.class_names)
    save_json({"val_accuracy_at_merge": round(acc, 2)}, paths.metrics / f"{spec.name}_merge.json")
    say(f"merged {spec.num_experts} teachers into {paths.merged}; BatchNorm re-estimated on {seen} images; "
        f"validation accuracy before training {acc:.1f}%")
