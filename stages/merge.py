"""merge: initialise the MoE from the teachers and re-estimate the backbone's BatchNorm statistics."""

from pathlib import Path

import torch
import typer

from moe.checkpoints import load_teacher, read_metadata, save_model
from moe.data import normalize, prepare_task_data
from moe.errors import MoEError
from moe.formats import save_json
from moe.merge import merge_teachers, recalibrate_batchnorm
from moe.runtime import seed_everything
from moe.training import predict

from .common import PARAMS_OPTION, TASK_OPTION, Paths, opt, params, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("merge")
@stage
def merge_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION,
                  bn_recalibration_batches: int = opt("bn_recalibration_batches")):
    """Backbone = mean of the teachers' backbones, expert i = teacher i's last block, fresh router."""
    spec = task_spec(task)
    p = params(params_file, bn_recalibration_batches=bn_recalibration_batches)
    paths = Paths(spec.name)
    files = sorted(paths.teachers.glob("teacher_*.pth"))
    if len(files) != spec.num_experts:
        raise MoEError(f"{paths.teachers}: found {len(files)} teacher checkpoints, task {spec.name} has "
                       f"{spec.num_experts} experts (run pretrain first)")
    teachers = [load_teacher(paths.teachers / f"teacher_{i + 1}.pth", len(t.class_ids)) for i, t in enumerate(spec.teachers)]
    data = prepare_task_data(spec, paths.data, p["val_fraction"], p["seed"], p["max_train_per_class"])
    seed_everything(p["seed"])  # the fresh router's initial weights; torch's default seed differs per process
    model = merge_teachers(spec, teachers, p["gate_noise_std"], p["classifier_from_teachers"])
    g = torch.Generator().manual_seed(p["seed"])
    order = torch.randperm(len(data.train), generator=g)[: p["bn_recalibration_batches"] * p["batch_size"]]
    batches = [normalize(data.train.images[idx], data.mean, data.std) for idx in order.split(p["batch_size"]) if len(idx) > 1]
    seen = recalibrate_batchnorm(model.feature_extractor, batches)
    logits, _ = predict(model, data.val.images, data.mean, data.std)
    acc = 100.0 * (logits.argmax(1) == data.val.labels).float().mean().item()
    save_model(paths.merged, model, data.mean, data.std, spec.class_ids, spec.class_names)
    save_json({"val_accuracy_at_merge": round(acc, 2), "bn_recalibration_images": seen}, paths.metrics / f"{spec.name}_merge.json")
    say(f"merged {spec.num_experts} teachers into {paths.merged}; BatchNorm re-estimated on {seen} images; "
        f"validation accuracy before training {acc:.1f}%")
