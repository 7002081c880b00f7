"""merge: initialise the MoE from the teachers and re-estimate the backbone's BatchNorm statistics."""

from pathlib import Path

import typer

from moe.checkpoints import save_model
from moe.data import prepare_task_data
from moe.formats import save_json
from moe.inference import accuracy, predict
from moe.merge import initial_moe

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
    # method scratch: the same architecture from random weights, to isolate what the teachers are worth
    model, seen = initial_moe(spec, [paths.teacher(i) for i in range(spec.num_experts)], data, p)
    acc = 100.0 * accuracy(predict(model, data.val.images, data.mean, data.std)[0], data.val.labels)
    save_model(paths.merged, model.cpu(), data.mean, data.std, spec.class_ids, spec.class_names)
    save_json({"val_accuracy_at_merge": round(acc, 2)}, paths.metrics / f"{spec.name}_merge.json")
    say(f"merged {spec.num_experts} teachers into {paths.merged}; BatchNorm re-estimated on {seen} images; "
        f"validation accuracy before training {acc:.1f}%")
