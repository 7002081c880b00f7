"""Which expert serves which class, and how well each expert does alone.

Contribution: the mean gate weight each expert receives on the images of each class.
Expert accuracy: accuracy per class with the gate forced one-hot to one expert (a real forward
pass through that expert alone, not a rescaled gate weight).
"""

from __future__ import annotations

import math

import torch

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
        "utilisation": {t.name: round(float(u), 4) for t, u in zip(spec.teachers, usage)},
        "routing_agreement": round(agreement, 4),
        "routing_entropy": round(entropy, 4),
        "dead_experts": [t.name for t, u in zip(spec.teachers, usage) if u < dead_below],
    }
