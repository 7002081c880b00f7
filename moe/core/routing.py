"""How the router spreads images over the experts: mean gate per class, agreement with the teachers that
hold each class, entropy. The train stage's per-epoch snapshots, the merge's fitted router and
analyze's tables all read these figures."""

from __future__ import annotations

import math

import torch

from ..base.tasks import TaskSpec


def gate_contribution(gates: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """experts x classes: mean gate weight per class; each column sums to 1."""
    out = torch.zeros(gates.shape[1], num_classes)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            out[:, c] = gates[mask].mean(0)
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
