"""Which expert serves which class, and how well each expert does alone.

Contribution: the mean gate weight each expert receives on the images of each class.
Expert accuracy: accuracy per class with the gate forced one-hot to one expert (a real forward
pass through that expert alone, not a rescaled gate weight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .inference import predict
from .tasks import TaskSpec


def gate_contribution(gates: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """experts x classes: mean gate weight per class; each column sums to 1."""
    out = torch.zeros(gates.shape[1], num_classes)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            out[:, c] = gates[mask].mean(0)
    return out


def forced_expert_accuracy(forced_logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """experts x classes: per-class accuracy (%) with all weight on one expert (N x E x C logits)."""
    pred = forced_logits.argmax(2)  # N x E
    out = torch.zeros(pred.shape[1], num_classes)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            out[:, c] = 100.0 * (pred[mask] == c).float().mean(0)
    return out


def routing_summary(spec: TaskSpec, gates: torch.Tensor, labels: torch.Tensor, dead_below: float = 0.02) -> dict:
    """Utilisation, agreement of the top expert with the teacher(s) owning the class, entropy, dead experts."""
    usage = gates.mean(0)
    owners = torch.tensor(spec.owner_matrix(), dtype=torch.bool)  # experts x classes
    top = gates.argmax(1)
    agreement = owners[top, labels].float().mean().item()
    entropy = -(gates * gates.clamp_min(1e-12).log()).sum(1).mean().item() / math.log(gates.shape[1])
    return {
        "routing_agreement": round(100 * agreement, 2),  # percent, like every accuracy
        "routing_entropy": round(entropy, 4),
        "utilisation": {t.name: round(float(u), 4) for t, u in zip(spec.teachers, usage)},
        "dead_experts": [t.name for t, u in zip(spec.teachers, usage) if u < dead_below],
    }


def gate_snapshot(model, split, mean, std, num_classes: int, precision: str = "fp32") -> torch.Tensor:
    """experts x classes mean gate weight of ``model`` on ``split`` now (the per-epoch heatmaps)."""
    _, gates = predict(model, split.images, mean, std, precision=precision)
    return gate_contribution(gates, split.labels, num_classes)


@dataclass
class RoutingAnalysis:
    contribution: torch.Tensor  # experts x classes, mean gate
    forced_accuracy: torch.Tensor  # experts x classes, % with all weight on one expert
    summary: dict  # routing agreement, entropy, utilisation, dead experts
    tables: dict  # utilisation, dead experts and both matrices by teacher and class name
    leads: dict[str, list[str]]  # teacher -> classes where its mean gate is the highest


def analyse_routing(spec: TaskSpec, predictions: dict) -> RoutingAnalysis:
    """Everything analyze reports, from evaluate's one pass over the test set."""
    gates, labels = predictions["gates"], predictions["labels"]
    contribution = gate_contribution(gates, labels, spec.num_classes)
    forced = forced_expert_accuracy(predictions["expert_logits"], labels, spec.num_classes)
    summary = routing_summary(spec, gates, labels)
    tables = {"utilisation": summary["utilisation"], "dead_experts": summary["dead_experts"],
              "contribution": {t.name: dict(zip(spec.class_names, [round(v, 4) for v in contribution[i].tolist()]))
                               for i, t in enumerate(spec.teachers)},
              "expert_accuracy": {t.name: dict(zip(spec.class_names, [round(v, 2) for v in forced[i].tolist()]))
                                  for i, t in enumerate(spec.teachers)}}
    leads = {t.name: [spec.class_names[c] for c in range(spec.num_classes) if contribution[:, c].argmax() == i]
             for i, t in enumerate(spec.teachers)}
    return RoutingAnalysis(contribution, forced, summary, tables, leads)
