"""Accuracy overall and per class, the confusion matrix, and sample predictions with gate weights."""

from __future__ import annotations

import torch

from .data import Split
from .tasks import TaskSpec


def accuracy_report(spec: TaskSpec, logits: torch.Tensor, labels: torch.Tensor) -> dict:
    pred = logits.argmax(1)
    per_class = {}
    for c, name in enumerate(spec.class_names):
        mask = labels == c
        per_class[name] = round(100.0 * (pred[mask] == c).float().mean().item(), 2) if mask.any() else None
    return {"accuracy": round(100.0 * (pred == labels).float().mean().item(), 2),
            "images": int(len(labels)), "per_class": per_class}


def confusion_matrix(num_classes: int, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """rows: true class, columns: predicted class."""
    pred = logits.argmax(1)
    return torch.bincount(labels * num_classes + pred, minlength=num_classes ** 2).view(num_classes, num_classes)


def sample_indices(labels: torch.Tensor, num_classes_shown: int, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` images from each of ``num_classes_shown`` randomly chosen classes (seeded)."""
    g = torch.Generator().manual_seed(seed)
    present = torch.unique(labels)
    chosen = present[torch.randperm(len(present), generator=g)[:num_classes_shown]].sort().values
    picks = []
    for c in chosen.tolist():
        idx = torch.nonzero(labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks)


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
