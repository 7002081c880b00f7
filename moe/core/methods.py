"""How each method makes and trains an MoE, in one place (``method`` in params.yaml).

    moe      the teachers merged (``moe.merge``), then trained with the original's three losses
    distill  the same start, plus learning from the frozen teachers' soft predictions (the only
             method that learns from ONNX teachers, which have no weights to merge)
    scratch  the same architecture and losses from random weights: what the teachers are worth

The merge stage calls ``initial_model``; the train stage and every comparison variant call
``train_moe``, so a variant named after a method is that method's pipeline run exactly.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from ..base.data import TaskData
from ..base.params import METHODS, settings_from
from ..base.tasks import TaskSpec, require_distillation
from .checkpoints import load_teacher, read_metadata
from .folding import fold_batchnorm
from .inference import accuracy, predict
from .merge import MergeReport, MergeSettings, calibrate, merge_and_calibrate, step_clock
from .models import MoEModel
from .onnx_teachers import OnnxTeacher, is_onnx, on_onnx_runtime, resolve_teacher_runtime
from .objectives import DistillObjective, MoEObjective
from .runtime import seed_everything
from .training import TrainConfig, TrainResult, fit

assert set(METHODS) == {"moe", "distill", "scratch"}, "a method added to moe.params.METHODS needs its rule here"


def teacher_normalisations(files, data: TaskData) -> list[tuple[list, list]]:
    """Each teacher's (mean, std) from its file, else the task's training statistics."""
    out = []
    for f in files:
        meta = read_metadata(f)
        out.append((meta.get("mean", data.mean), meta.get("std", data.std)))
    return out


def random_moe(spec: TaskSpec, seed: int, gate_noise_std: float = 0.1) -> MoEModel:
    """The MoE architecture with fresh, seeded weights (method scratch: no teacher involved)."""
    torch.manual_seed(seed)
    return MoEModel(spec.num_classes, spec.num_experts, gate_noise_std)


def initial_model(method: str, spec: TaskSpec, teacher_files: list[Path], data: TaskData,
                  settings: MergeSettings, say=lambda s: None) -> tuple[MoEModel, MergeReport]:
    """The model ``method`` starts training from, with what its making did; ``say`` hears a line after
    each step of a merge."""
    if method == "scratch":
        return random_moe(spec, settings.seed, settings.gate_noise_std), MergeReport()
    require_distillation(spec, method, "method")
    # an ONNX teacher has no weights to merge (None): its expert starts fresh (``moe.core.merge``)
    teachers = [None if is_onnx(f) else load_teacher(f, len(t.class_ids)) for f, t in zip(teacher_files, spec.teachers)]
    merged, report = merge_and_calibrate(spec, teachers, teacher_normalisations(teacher_files, data), data, settings,
                                         say)
    if settings.min_odds_ratio <= 0:
        return merged, report
    return merged_or_random_start(merged, report, spec, data, settings, say)


def odds_ratio(accuracy: float, baseline: float, images: int) -> float:
    """``accuracy``'s odds of a right answer (right : wrong) over ``baseline``'s, both in percent of the
    same ``images`` images.

    Odds rather than points or a share of the errors: they weigh a gain alike on a hard task and an easy
    one. A share of the errors asks too much of a hard task (where a calibrated random start is right on
    20 % of validation, avoiding 15 % of its errors means 32 % right), points too much of an easy one
    (where the random start is right on 95 %). Half an image is added to both counts (Haldane's
    correction), so that a perfect score has finite odds."""
    def odds(percent):
        right = percent / 100.0 * images + 0.5
        return right / (images + 1 - right)
    return odds(accuracy) / odds(baseline)


def merged_or_random_start(merged: MoEModel, report: MergeReport, spec: TaskSpec, data: TaskData,
                           settings: MergeSettings, say=lambda s: None) -> tuple[MoEModel, MergeReport]:
    """The merged model, unless its odds of a right answer on validation are less than
    ``settings.min_odds_ratio`` times those of scratch's random weights given the same calibration
    (``odds_ratio``): then scratch's start itself.

    Teachers that barely left their initial weights, or learnt from few images, carry features no better
    than random ones, and a network started from them ends several points below the same network
    started from random weights (docs/results.md, "A task of your own"); a calibrated random start is
    the yardstick. Not the calibrated random model, though: its fitted router and classifier slow
    training as the merged model's do."""
    started = time.perf_counter()
    device = next(merged.parameters()).device
    say("merge: checking it against scratch's random weights, given the same calibration")
    probe = calibrate(random_moe(spec, settings.seed, settings.gate_noise_std).to(device), spec, data, settings,
                      MergeReport(), step_clock(report.check_seconds, "random start", say))

    def val_accuracy(model):
        logits, _ = predict(model, data.val.images, data.mean, data.std)
        return round(100.0 * accuracy(logits, data.val.labels), 2)

    report.merged_val_accuracy, report.random_val_accuracy = val_accuracy(merged), val_accuracy(probe)
    report.seconds["random_start_check"] = round(time.perf_counter() - started, 2)
    report.odds_ratio = odds_ratio(report.merged_val_accuracy, report.random_val_accuracy, len(data.val))
    report.started_random = report.odds_ratio < settings.min_odds_ratio
    return (random_moe(spec, settings.seed, settings.gate_noise_std) if report.started_random else merged), report


def objective_for(method: str, p: dict, spec: TaskSpec, teacher_files: list[Path], mean, std,
                  device, train_images: torch.Tensor | None = None) -> MoEObjective:
    """The objective ``method`` trains with, its settings from ``p``; distill loads the frozen teachers
    (with ``kd_targets: images``, to predict once on ``train_images``)."""
    if method != "distill":
        return settings_from(MoEObjective, p)
    from .teachers import load_task_teachers

    objective = settings_from(DistillObjective, p)
    teachers, index, renormalise = load_task_teachers(spec, teacher_files, mean, std)
    if resolve_teacher_runtime(objective.kd_teacher_runtime, device) == "onnxruntime":
        frozen = [t if isinstance(t, OnnxTeacher) else on_onnx_runtime(t, spec.image_size, device) for t in teachers]
    else:  # frozen teachers run in eval mode: their BatchNorms fold into the convolutions (``moe.folding``)
        frozen = [fold_batchnorm(t.to(device))[0] for t in teachers]
    return objective.attach(frozen, [i.to(device) for i in index], renormalise,
                            None if train_images is None else train_images.to(device), mean, std)


def state_digest(model: MoEModel) -> str:
    """A digest of the weights and gating temperature a run starts from: a resume must start from the same."""
    h = hashlib.sha256(repr(model.temperature).encode())
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def train_moe(method: str, p: dict, spec: TaskSpec, model: MoEModel, data: TaskData, teacher_files: list[Path],
              precision: str, checkpoint: Path | None = None, on_epoch=None, progress=None,
              say=lambda s: None) -> TrainResult:
    """Train ``model`` (on its device) as ``method`` does, with the loop's and the objective's settings from
    ``p``. A merged start is itself a candidate for selection (epoch 0). A resumable ``checkpoint`` is resumed only when it was written for the same method, settings,
    data split and starting weights (``state_digest``); otherwise the run starts fresh."""
    require_distillation(spec, method, "method")
    device = next(model.parameters()).device
    objective = objective_for(method, p, spec, teacher_files, data.mean, data.std, device, data.train.images)
    cfg = settings_from(TrainConfig, p, precision=precision)
    start = {"task": spec.name, "method": method, "val_fraction": p["val_fraction"],
             "max_train_per_class": p["max_train_per_class"], "gate_noise_std": p["gate_noise_std"],
             "start": state_digest(model)}
    seed_everything(p["seed"])  # right before training: the comparison's variant of a method is its run exactly
    return fit(model, objective, data.train, data.val, cfg, data.mean, data.std, checkpoint=checkpoint,
               settings=start, on_epoch=on_epoch, progress=progress, say=say,
               start_is_candidate=method != "scratch")  # never end below the merge on validation


# the parameters train_moe reads beyond the settings dataclasses'
TRAIN_PARAMS = ("seed", "val_fraction", "max_train_per_class", "gate_noise_std")
