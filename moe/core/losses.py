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


def moe_loss(logits, labels, gates, diversity_weight: float, balance_weight: float,
             label_smoothing: float = 0.0) -> LossTerms:
    """``label_smoothing`` > 0: the task term's target keeps 1 - s on the label and spreads s evenly
    over all classes (the original has none)."""
    gates = gates.float()
    task = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    div = diversity_loss(gates)
    bal = balance_loss(gates)
    return LossTerms(task + diversity_weight * div + balance_weight * bal, task, div, bal)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: list[torch.Tensor],
                      teacher_classes: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """Learning from teachers that each know only some of the classes (classes may overlap).

    For each teacher: the student's probabilities restricted to that teacher's classes and
    renormalised, at ``temperature``, are pulled towards the teacher's own softmax at the same
    temperature (KL(teacher || student), batch mean, times T^2 so that its gradient keeps its scale
    as T changes); the mean over teachers. A class two teachers hold is pulled by both.
    ``teacher_classes[t]``: the student's output index of each of teacher t's outputs, in its order.
    """
    t = float(temperature)
    total = student_logits.new_zeros(())
    for logits, index in zip(teacher_logits, teacher_classes):
        log_student = F.log_softmax(student_logits.float()[:, index] / t, dim=1)
        teacher = F.softmax(logits.float() / t, dim=1)
        total = total + F.kl_div(log_student, teacher, reduction="batchmean") * t * t
    return total / len(teacher_logits)
