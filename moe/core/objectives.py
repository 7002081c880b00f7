"""What a model is trained to do: the loss of one batch and the figures of one epoch.

The training loop (``moe.training.fit``) never asks what model it holds; an objective does. A new
way of training (distillation, a baseline) is one more class here, not a branch in the loop.

An objective's ``step`` returns the loss to minimise, the logits (for accuracy) and the named loss
terms the loop averages over the epoch and logs as ``<name>_loss``. ``where`` tells it which training
images the batch's crops came from (their indices, and which crops were mirrored), for targets kept
per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..base.data import normalize
from ..base.params import default_of
from .inference import views
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

    def step(self, model, x, y, where=None) -> Step:
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

    def step(self, model, x, y, where=None) -> Step:
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

    ``kd_targets``: ``crops``: the teachers run in eval mode on every augmented batch, as the student
    sees it, each on inputs normalised as it was trained (``attach``); ``images``: they run once, at
    the start of the first epoch (so its seconds count them), on each training image and its mirror
    image (``cache_targets``), and a crop learns from its image's predictions: a teacher pass per
    image instead of one per image and epoch.
    """
    kd_weight: float = default_of("kd_weight")
    kd_temperature: float = default_of("kd_temperature")
    kd_teacher_runtime: str = default_of("kd_teacher_runtime")
    kd_targets: str = default_of("kd_targets")

    def attach(self, teachers, teacher_classes, renormalise, train_images=None, mean=None,
               std=None) -> "DistillObjective":
        """``teachers``: modules on the training device; ``teacher_classes``: index tensors into the
        student's outputs; ``renormalise``: per teacher, a function from the student's input to its;
        ``train_images`` (uint8, on the device), ``mean``, ``std``: what ``kd_targets: images`` predicts on."""
        self.teachers, self.teacher_classes, self.renormalise = list(teachers), list(teacher_classes), list(renormalise)
        self.train_images, self.mean, self.std, self.cached = train_images, mean, std, None
        if self.kd_targets == "images" and train_images is None:
            raise ValueError("kd_targets 'images' needs the training images")
        for t in self.teachers:
            t.eval().requires_grad_(False)
        return self

    def begin_epoch(self, model, epoch: int, num_epochs: int) -> None:
        super().begin_epoch(model, epoch, num_epochs)
        if self.kd_targets == "images" and self.kd_weight != 0 and self.cached is None:
            self.cache_targets(self.train_images, self.mean, self.std)

    @torch.no_grad()
    def cache_targets(self, images: torch.Tensor, mean, std, batch_size: int = 256) -> None:
        """Every teacher's logits for each uint8 training image, plain and mirrored: per teacher a
        (2, images, its classes) tensor on the images' device, in fp32."""
        out = [torch.empty(2, len(images), len(c), device=images.device) for c in self.teacher_classes]
        for start in range(0, len(images), batch_size):
            x = normalize(images[start:start + batch_size], mean, std)
            for mirrored, view in enumerate(views(x, flip=True)):
                for cached, t, f in zip(out, self.teachers, self.renormalise):
                    cached[mirrored, start:start + len(x)] = t(f(view)).float()
        self.cached = out

    def teacher_logits(self, x, where) -> list[torch.Tensor]:
        if self.kd_targets == "images":  # stored by cache_targets, at the first epoch's start
            indices, mirrored = where
            return [c[mirrored.long().to(c.device), indices.to(c.device)] for c in self.cached]
        with torch.no_grad():
            return [t(f(x)) for t, f in zip(self.teachers, self.renormalise)]

    def step(self, model, x, y, where=None) -> Step:
        step = super().step(model, x, y)
        if self.kd_weight == 0:
            return step
        kd = distillation_loss(step.logits, self.teacher_logits(x, where), self.teacher_classes, self.kd_temperature)
        return Step(step.loss + self.kd_weight * kd, step.logits, {**step.terms, "distillation": kd})
