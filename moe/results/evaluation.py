"""Accuracy overall and per class, the confusion matrix, and sample predictions with gate weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..base.data import Split, channel_stats, load_released_test_split, load_task_split, shuffled_per_class
from ..base.errors import MoEError
from ..base.formats import safe_load, save_torch
from ..base.tasks import TaskSpec
from ..core.checkpoints import load_moe, normalisation_of, read_metadata
from ..core.folding import fold_batchnorm
from ..core.inference import EVAL_BATCH, accuracy, eval_batches, mean_over_views, predict
from ..core.models import MoEModel
from ..core.runtime import autocast, pick_device


def evaluation_set(spec: TaskSpec, model_path: str | Path, data_root: str | Path) -> tuple[Split, list, list, str]:
    """(images, mean, std, protocol) on which to evaluate a model file.

    A file of ours: the task's test split (each image once) with the normalisation it was trained
    with. A released file (no metadata): the original project's evaluation, exactly: every teacher's
    test file in teacher order, nothing de-duplicated, normalised with those images' own statistics.
    """
    trained_with = normalisation_of(model_path)
    if trained_with is not None:
        return load_task_split(spec, data_root, "test"), *trained_with, "this project's: test split, training statistics"
    images = load_released_test_split(spec, data_root)
    mean, std = channel_stats(images.images, digits=None)
    return images, mean, std, "the original's: every teacher's test file, normalised with their own statistics"


def input_normalisation(spec: TaskSpec, model_path: str | Path, data_root: str | Path) -> tuple[list, list]:
    """(mean, std) for new images: a file of ours says; a released model uses its test set's statistics."""
    trained_with = normalisation_of(model_path)
    if trained_with is not None:
        return trained_with
    _, mean, std, _ = evaluation_set(spec, model_path, data_root)
    return mean, std


@torch.no_grad()
def predict_with_experts(model: MoEModel, images, mean, std, batch_size: int = EVAL_BATCH,
                         precision: str = "fp32", flip: bool = False, shift: int = 0) -> dict:
    """One pass over the test set gives everything evaluation and analysis need: the routed logits
    (N x C), the gates (N x E) and the logits with all weight on each expert in turn (N x E x C);
    ``flip``, ``shift``: each averaged over those test-time views (``moe.inference.views``)."""
    model, _ = fold_batchnorm(model)
    logits, gates, expert_logits = [], [], []

    def parts(x):
        onehot = torch.eye(model.num_experts, device=x.device)
        outputs, routed, gate_features = model.parts(x)
        forced = [model.combine(outputs, onehot[e].expand(len(x), -1), gate_features) for e in range(model.num_experts)]
        return model.combine(outputs, routed, gate_features), routed, torch.stack(forced, dim=1)

    for x in eval_batches(model, images, mean, std, batch_size):
        with autocast(x.device, precision):
            routed_logits, routed, forced = mean_over_views(parts, x, flip, shift)
        logits.append(routed_logits.float().cpu())
        expert_logits.append(forced.float().cpu())
        gates.append(routed.float().cpu())
    return {"logits": torch.cat(logits), "gates": torch.cat(gates), "expert_logits": torch.cat(expert_logits)}


def save_predictions(predictions: dict, labels: torch.Tensor, path: str | Path) -> None:
    save_torch({**predictions, "labels": labels}, path)


def load_predictions(path: str | Path, num_experts: int, num_classes: int) -> dict:
    """Predictions written by ``save_predictions``, checked against the task's shape."""
    obj = safe_load(path)
    keys = ("logits", "gates", "expert_logits", "labels")
    if not isinstance(obj, dict) or any(not isinstance(obj.get(k), torch.Tensor) for k in keys):
        raise MoEError(f"{path}: not a predictions file (expected tensors {', '.join(keys)})")
    n = len(obj["labels"])
    expected = {"logits": (n, num_classes), "gates": (n, num_experts), "expert_logits": (n, num_experts, num_classes)}
    for key, shape in expected.items():
        if tuple(obj[key].shape) != shape:
            raise MoEError(f"{path}: '{key}' has shape {tuple(obj[key].shape)}, expected {shape} for this task")
    return obj


def accuracy_report(spec: TaskSpec, logits: torch.Tensor, labels: torch.Tensor) -> dict:
    per_class = {}
    for c, name in enumerate(spec.class_names):
        mask = labels == c
        per_class[name] = round(100.0 * accuracy(logits[mask], labels[mask]), 2) if mask.any() else None
    return {"accuracy": round(100.0 * accuracy(logits, labels), 2), "images": int(len(labels)), "per_class": per_class}


def confusion_matrix(num_classes: int, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """rows: true class, columns: predicted class."""
    pred = logits.argmax(1)
    return torch.bincount(labels * num_classes + pred, minlength=num_classes ** 2).view(num_classes, num_classes)


def sample_indices(labels: torch.Tensor, num_classes_shown: int, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` images from each of ``num_classes_shown`` randomly chosen classes (seeded)."""
    g = torch.Generator().manual_seed(seed)
    present = torch.unique(labels)
    chosen = present[torch.randperm(len(present), generator=g)[:num_classes_shown]].sort().values
    return torch.cat([idx[:per_class] for idx in shuffled_per_class(labels, chosen.tolist(), g)])


def prediction_rows(spec: TaskSpec, split: Split, logits, gates, indices) -> list[dict]:
    probs = logits.softmax(1)
    rows = []
    for i in indices.tolist():
        row = {"index": i, "true": spec.class_names[int(split.labels[i])],
               "predicted": spec.class_names[int(logits[i].argmax())],
               "confidence": round(float(probs[i].max()), 4)}
        if gates is not None:
            row.update({f"gate_{t.name}": round(float(g), 4) for t, g in zip(spec.teachers, gates[i])})
        rows.append(row)
    return rows


@dataclass
class Evaluation:
    protocol: str  # which rules: this project's, or the original's for a released file
    temperature: float  # the gating temperature the model ran at
    test: Split
    predictions: dict  # logits, gates, expert_logits (see predict_with_experts)
    report: dict  # overall and per-class accuracy
    samples: torch.Tensor  # indices of the sample images shown
    sample_rows: list[dict]
    history: list[dict] | None  # training history stored in the file, if any


def evaluate_model(spec: TaskSpec, model_path: str | Path, data_root: str | Path, seed: int,
                   flip: bool = False, shift: int = 0) -> Evaluation:
    """A model file on its evaluation set (``evaluation_set``), once, with everything evaluate writes;
    ``flip``, ``shift``: test-time augmentation (``moe.inference.views``)."""
    model = load_moe(model_path, spec).to(pick_device())  # a GPU when there is one
    test, mean, std, protocol = evaluation_set(spec, model_path, data_root)
    predictions = predict_with_experts(model, test.images, mean, std, flip=flip, shift=shift)
    logits, gates = predictions["logits"], predictions["gates"]
    samples = sample_indices(test.labels, min(10, spec.num_classes), 1, seed)
    return Evaluation(protocol, model.temperature, test, predictions, accuracy_report(spec, logits, test.labels), samples,
                      prediction_rows(spec, test, logits, gates, samples), read_metadata(model_path).get("history"))


def accuracy_on(spec: TaskSpec, model_path: str | Path, split: Split, flip: bool = False, shift: int = 0) -> float:
    """Percent of ``split`` a model file of this project gets right (with its recorded normalisation;
    ``flip``, ``shift``: test-time augmentation, ``moe.inference.views``)."""
    trained_with = normalisation_of(model_path)
    if trained_with is None:
        raise MoEError(f"{model_path}: records no normalisation (not a model file this project wrote)")
    model = load_moe(model_path, spec).to(pick_device())
    return round(100.0 * accuracy(predict(model, split.images, *trained_with, flip=flip, shift=shift)[0], split.labels), 2)
