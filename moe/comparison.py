"""Does the merge pay? Every method and ablation trained on the same teachers and the same splits.

A variant is a name and the few parameters it changes (``comparison.variants`` in params.yaml);
everything else is shared, so a difference between two rows is that change alone. Each variant
records its test accuracy (the test set used once, after training), its training seconds and
images seen, and per epoch its validation accuracy with the elapsed time, so time-to-accuracy can
be read off. The untrained baselines come from ``moe.baselines`` and from each variant's model
before its first step.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .data import Split, TaskData
from .inference import accuracy, predict
from .merge import MergeSettings
from .methods import initial_model, train_moe
from .params import settings_from
from .tasks import TaskSpec


def variant_params(p: dict, changes: dict) -> dict:
    """The parameters a variant trains with: ``p`` with its (already validated) changes."""
    return {**p, **changes}


def test_accuracy(model, test: Split, mean, std, precision: str = "fp32") -> float:
    return round(100.0 * accuracy(predict(model, test.images, mean, std, precision=precision)[0], test.labels), 2)


def train_variant(spec: TaskSpec, data: TaskData, test: Split, teacher_files: list[Path], p: dict,
                  device: torch.device, precision: str, checkpoint: Path | None = None,
                  progress=None, say=lambda s: None) -> dict:
    """Make the variant's starting model, train it, measure it on ``test``; returns its record."""
    started = time.perf_counter()
    model, merge_report = initial_model(p["method"], spec, teacher_files, data, settings_from(MergeSettings, p))
    model.to(device)
    start_accuracy = test_accuracy(model, test, data.mean, data.std)
    setup_seconds = time.perf_counter() - started
    result = train_moe(p["method"], p, spec, model, data, teacher_files, precision, checkpoint=checkpoint,
                       progress=progress, say=say)
    epochs = [{"epoch": r["epoch"], "seconds": round(c["seconds"], 2), "images_seen": c["images_seen"],
               "val_accuracy": round(r["val_accuracy"], 2)} for r, c in zip(result.history, result.clock)]
    return {"test_accuracy": test_accuracy(model, test, data.mean, data.std, precision),
            "test_accuracy_before_training": start_accuracy,
            "best_epoch": result.best_epoch, "best_val_accuracy": round(result.best_val_accuracy, 2),
            "train_seconds": epochs[-1]["seconds"], "images_seen": epochs[-1]["images_seen"],
            "setup_seconds": round(setup_seconds, 2), "bn_images": merge_report.bn_images, "epochs": epochs}


def comparison_summary(runs: dict[str, dict], baselines: dict[str, float], images: int) -> dict:
    """One record for metrics: accuracy of every method, trained or not, and the cost of the trained."""
    accuracy_by_method = {name: run["test_accuracy"] for name, run in runs.items()}
    if "moe" in runs:  # the merge before any training: the moe variant's starting point
        accuracy_by_method["merged, untrained"] = runs["moe"]["test_accuracy_before_training"]
    accuracy_by_method.update(baselines)
    return {"images": images,
            "test_accuracy": accuracy_by_method,
            "train_seconds": {name: run["train_seconds"] for name, run in runs.items()},
            "images_seen": {name: run["images_seen"] for name, run in runs.items()},
            "best_epoch": {name: run["best_epoch"] for name, run in runs.items()}}


def time_to_accuracy(runs: dict[str, dict], reference: str = "moe") -> dict[str, float | None]:
    """Seconds each variant took to first reach the reference's best validation accuracy (None: never)."""
    if reference not in runs:
        return {}
    target = runs[reference]["best_val_accuracy"]
    return {name: next((e["seconds"] for e in run["epochs"] if e["val_accuracy"] >= target), None)
            for name, run in runs.items()}


def curve_rows(runs: dict[str, dict]) -> list[dict]:
    """Long-format rows (variant as "series", epoch, seconds, images seen, validation accuracy) for
    DVC's plots (the project's series template colours by "series")."""
    return [{"series": name, **e} for name, run in runs.items() for e in run["epochs"]]
