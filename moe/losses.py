"""The three loss terms of the original project.

Task and diversity terms are averaged over the batch (the original README writes them as sums over
the N samples; dividing by N keeps the weights' meaning independent of batch size). The balance
term is exactly as written: squared deviation of mean expert usage from uniform.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def diversity_loss(gates: torch.Tensor) -> torch.Tensor:
    """Mean over samples of sum_{j != k} G_j G_k: high when several experts share one input."""
    total = gates.sum(dim=1)
    return (total * total - (gates * gates).sum(dim=1)).mean()


def balance_loss(gates: torch.Tensor) -> torch.Tensor:
    """sum_j (1/E - mean_i G_ij)^2: zero when every expert gets the same share of the batch."""
    usage = gates.mean(dim=0)
    return ((1.0 / gates.shape[1] - usage) ** 2).sum()


@dataclass
class LossTerms:
    total: torch.Tensor
    task: torch.Tensor
    diversity: torch.Tensor
    balance: torch.Tensor


def moe_loss(logits, labels, gates, diversity_weight: float, balance_weight: float) -> LossTerms:
    gates = gates.float()
    task = F.cross_entropy(logits.float(), labels)
    div = diversity_loss(gates)
    bal = balance_loss(gates)
    return LossTerms(task + diversity_weight * div + balance_weight * bal, task, div, bal)
