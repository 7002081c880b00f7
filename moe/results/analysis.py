"""Which expert serves which class, and how well each expert does alone.

Contribution: the mean gate weight each expert receives on the images of each class.
Expert accuracy: accuracy per class with the gate forced one-hot to one expert (a real forward
pass through that expert alone, not a rescaled gate weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..base.tasks import TaskSpec
from ..core.routing import gate_contribution, routing_summary


def forced_expert_accuracy(forced_logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """experts x classes: per-class accuracy (%) with all weight on one expert (N x E x C logits)."""
    pred = forced_logits.argmax(2)  # N x E
    out = torch.zeros(pred.shape[1], num_classes)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            out[:, c] = 100.0 * (pred[mask] == c).float().mean(0)
    return out


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
