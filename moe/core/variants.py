"""One comparison variant: a method or an ablation trained on the same teachers and the same splits.

A variant is a name and the few parameters it changes (``comparison.variants`` in params.yaml);
everything else is shared, so a difference between two rows is that change alone. Each variant
records its test accuracy (the test set used once, after training), its training seconds and
images seen, and per epoch its validation accuracy with the elapsed time and the machine's load, so
time-to-accuracy can be read off and a time taken while other work shared the CPU says so
(``contended``); and its model's test accuracy before the first step (the merge alone).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from ..base.data import Split, TaskData
from ..base.params import settings_from
from ..base.tasks import TaskSpec
from .inference import accuracy, predict
from .merge import MergeSettings
from .methods import initial_model, train_moe
from .routing import routing_summary
from .runtime import contended


def variant_params(p: dict, changes: dict) -> dict:
    """The parameters a variant trains with: ``p`` with its (already validated) changes."""
    return {**p, **changes}


def test_figures(spec: TaskSpec, model, test: Split, mean, std, precision: str = "fp32",
                 flip: bool = False, shift: int = 0) -> tuple[float, float]:
    """(test accuracy, routing agreement), in percent; ``flip``, ``shift``: with those test-time views."""
    logits, gates = predict(model, test.images, mean, std, precision=precision, flip=flip, shift=shift)
    return (round(100.0 * accuracy(logits, test.labels), 2),
            routing_summary(spec, gates, test.labels)["routing_agreement"])


def train_variant(spec: TaskSpec, data: TaskData, test: Split, teacher_files: list[Path], p: dict,
                  device: torch.device, precision: str, checkpoint: Path | None = None,
                  progress=None, say=lambda s: None) -> dict:
    """Make the variant's starting model, train it, measure it on ``test``; returns its record."""
    started = time.perf_counter()
    model, merge_report = initial_model(p["method"], spec, teacher_files, data, settings_from(MergeSettings, p), say)
    model.to(device)
    start_accuracy, start_routing = test_figures(spec, model, test, data.mean, data.std, flip=p["tta_flip"],
                                                 shift=p["tta_shift"])
    setup_seconds = time.perf_counter() - started
    result = train_moe(p["method"], p, spec, model, data, teacher_files, precision, checkpoint=checkpoint,
                       progress=progress, say=say)
    epochs = [{"epoch": r["epoch"], "seconds": round(c["seconds"], 2), "images_seen": c["images_seen"],
               "val_accuracy": round(r["val_accuracy"], 2), "load": c.get("load")}
              for r, c in zip(result.history, result.clock)]
    test_accuracy, routing = test_figures(spec, model, test, data.mean, data.std, precision, p["tta_flip"], p["tta_shift"])
    return {"test_accuracy": test_accuracy, "routing_agreement": routing,
            "test_accuracy_before_training": start_accuracy, "routing_agreement_before_training": start_routing,
            "best_epoch": result.best_epoch, "best_val_accuracy": round(result.best_val_accuracy, 2),
            "train_seconds": epochs[-1]["seconds"], "images_seen": epochs[-1]["images_seen"],
            "setup_seconds": round(setup_seconds, 2), "bn_images": merge_report.bn_images,
            "started_random": merge_report.started_random,
            "cores": os.cpu_count(), "contended": contended([e["load"] for e in epochs]), "epochs": epochs}
