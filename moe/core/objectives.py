"""What a model is trained to do: the loss of one batch and the figures of one epoch.

The training loop (``moe.training.fit``) never asks what model it holds; an objective does. A new
way of training (distillation, a baseline) is one more class here, not a branch in the loop.

An objective's ``step`` returns the loss to minimise, the logits (for accuracy) and the named loss
terms the loop averages over the epoch and logs as ``<name>_loss``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..base.params import default_of
from .losses import distillation_loss, moe_loss
from .routing import gate_contribution
from .schedules import temperature_at


@dataclass
class Step:
    loss: torch.Tensor
    logits: torch.Tensor
    terms: dict[str, torch.Tensor]  # named parts of the loss, each a batch mean


@dataclass
class CrossEntropy:
    """Plain classification: the teachers' objective."""
    label_smoothing: float = 0.0

    def begin_epoch(self, model, epoch: int, num_epochs: int) -> None:
        pass

    def step(self, model, x, y) -> Step:
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        return Step(loss, logits, {})

    def epoch_figures(self) -> dict:
        return {}

    def validation_figures(self, gates, labels, num_classes: int) -> dict:
        return {}

    def sum_over_ranks(self, total) -> None:
        """Nothing counted per rank here."""

    def select(self, model, record: dict) -> None:
        """Put the model in the state the selected epoch ran in (nothing to do here)."""


@dataclass
class MoEObjective:
    """The original project's three terms and its annealed gating temperature, with routing figures.

    Its fields are its settings (part of a resumable run's fingerprint); the running sums of an
    epoch are plain attributes.
    """
    diversity_weight: float = default_of("diversity_weight")
    balance_weight: float = default_of("balance_weight")
    initial_temperature: float = default_of("initial_temperature")
    final_temperature: float = default_of("final_temperature")
    label_smoothing: float = default_of("label_smoothing")

    def begin_epoch(self, model, epoch: int, num_epochs: int) -> None:
        self.temperature = temperature_at(epoch, num_epochs, self.initial_temperature, self.final_temperature)
        model.set_temperature(self.temperature)
        self.usage = torch.zeros(model.num_experts)
        self.entropy, self.seen = 0.0, 0

    def step(self, model, x, y) -> Step:
        logits, gates = model(x)
        terms = moe_loss(logits, y, gates, self.diversity_weight, self.balance_weight, self.label_smoothing)
        g = gates.detach().float().cpu()
        self.usage += g.sum(0)
        self.entropy += -(g * g.clamp_min(1e-12).log()).sum().item()
        self.seen += len(y)
        return Step(terms.total, logits, {"task": terms.task, "diversity": terms.diversity, "balance": terms.balance})

    def sum_over_ranks(self, total) -> None:
        """Routing counts of every rank (``total``: element-wise sum over ranks), before the figures."""
        summed = total([*self.usage.tolist(), self.entropy, self.seen])
        self.usage, self.entropy, self.seen = torch.tensor(summed[:-2]), summed[-2], int(summed[-1])

    def epoch_figures(self) -> dict:
        seen = max(self.seen, 1)
        figures = {"temperature": self.temperature,
                   "routing_entropy": self.entropy / seen / math.log(len(self.usage))}
        figures.update({f"expert_usage_{i + 1}": u for i, u in enumerate((self.usage / seen).tolist())})
        return figures

    def validation_figures(self, gates, labels, num_classes: int) -> dict:
        """The mean gate per class on validation (experts x classes), for the per-epoch heatmaps."""
        return {"val_gate_per_class": [[round(v, 4) for v in row]
                                       for row in gate_contribution(gates, labels, num_classes).tolist()]}

    def select(self, model, record: dict) -> None:
        """The router as it was selected: at the temperature of the chosen epoch."""
        model.set_temperature(record["temperature"])


@dataclass
class DistillObjective(MoEObjective):
    """The MoE's objective plus learning from the frozen teachers' soft predictions
    (``losses.distillation_loss``); with ``kd_weight`` 0 it is the MoE objective exactly.

    The teachers run in eval mode on the same augmented batch as the student, each on inputs
    normalised as it was trained (``attach``).
    """
    kd_weight: float = default_of("kd_weight")
    kd_temperature: float = default_of("kd_temperature")
    kd_teacher_runtime: str = default_of("kd_teacher_runtime")

    def attach(self, teachers, teacher_classes, renormalise) -> "DistillObjective":
        """``teachers``: modules on the training device; ``teacher_classes``: index tensors into the
        student's outputs; ``renormalise``: per teacher, a function from the student's input to its."""
        self.teachers, self.teacher_classes, self.renormalise = list(teachers), list(teacher_classes), list(renormalise)
        for t in self.teachers:
            t.eval().requires_grad_(False)
        return self

    def step(self, model, x, y) -> Step:
        step = super().step(model, x, y)
        if self.kd_weight == 0:
            return step
        with torch.no_grad():
            teacher_logits = [t(f(x)) for t, f in zip(self.teachers, self.renormalise)]
        kd = distillation_loss(step.logits, teacher_logits, self.teacher_classes, self.kd_temperature)
        return Step(step.loss + self.kd_weight * kd, step.logits, {**step.terms, "distillation": kd})
