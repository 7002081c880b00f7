"""One training loop for any model and objective: early stopping, resumable checkpoints, fault checks.

Every epoch ends with an atomic checkpoint holding everything needed to continue bit-for-bit on
CPU: model, optimizer, LR schedule, early-stopping state, best weights, history and every RNG state.
A checkpoint written under different settings is not resumed silently: the caller is told.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..base.data import Split, normalize
from ..base.errors import MoEError
from ..base.formats import safe_load, save_torch
from ..base.params import default_of
from . import distributed
from .batches import alternating_flips, batch_order, crop_and_flip, crop_flip_draws, downscale, scaled_size
from .folding import calibration_batches, recalibrate_batchnorm
from .inference import accuracy, predict
from .runtime import autocast, machine_load, memory_format_for, rng_state, set_rng_state
from .schedules import lr_factor


@dataclass
class TrainConfig:
    """How the loop runs; field names are the parameters' (built with ``moe.params.settings_from``)."""
    num_epochs: int = default_of("num_epochs")
    lr: float = default_of("lr")
    weight_decay: float = default_of("weight_decay")
    patience: int = default_of("patience")
    batch_size: int = default_of("batch_size")
    seed: int = default_of("seed")
    warmup_epochs: float = default_of("warmup_epochs")
    weight_decay_scope: str = default_of("weight_decay_scope")
    vector_lr_scale: float = default_of("vector_lr_scale")
    ema_decay: float = default_of("ema_decay")
    flips: str = default_of("flips")
    low_res_epochs: int = default_of("low_res_epochs")
    low_res_scale: float = default_of("low_res_scale")
    bn_recalibration_batches: int = default_of("bn_recalibration_batches")
    precision: str = "fp32"  # resolved already: "bf16" or "fp32"

    def fingerprint(self, objective, extra: dict | None = None) -> str:
        """Settings that must match for a resume: the loop's, the objective's, and ``extra``."""
        blob = json.dumps({**asdict(self), **asdict(objective), **(extra or {})}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Progress(Protocol):
    """What a person watching sees: a bar within the epoch, a line after it (``record``: its figures)."""
    def start_epoch(self, epoch: int, num_epochs: int, num_batches: int, image_sizes: list[int]) -> None:
        """``image_sizes``: the side of the images each epoch of the run trains on."""
    def advance(self, loss: float, accuracy: float) -> None: ...
    def end_epoch(self, record: dict) -> None: ...


@dataclass
class TrainResult:
    best_state: dict
    best_epoch: int
    best_val_accuracy: float  # percent, as every accuracy in the project
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from: int | None = None
    # per epoch, cumulative: seconds spent (training + validation) and training images seen. Kept out
    # of ``history`` (which is saved in the model file) so the same run writes the same bytes.
    clock: list[dict] = field(default_factory=list)
    start: dict | None = None  # the starting model's record (epoch 0) when it was a candidate

    @property
    def best_record(self) -> dict:
        """The history entry of the selected epoch (its temperature, for an MoE); epoch 0 is the start."""
        return self.start if self.best_epoch == 0 else self.history[self.best_epoch - 1]


def _interned(record: dict) -> dict:
    """One string object per key name across all epochs, resumed or not: pickle then writes each key
    once, so a resumed run saves its history as the same bytes as an uninterrupted one."""
    return {sys.intern(k): v for k, v in record.items()}


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, scope: str,
                     vector_lr_scale: float = 1.0) -> list[dict]:
    """AdamW's groups: matrices (conv and linear weights), then vectors (BatchNorm parameters and
    biases). Scope ``matrices``: only the matrices decay; pulling a BatchNorm's scale or a bias towards
    zero regularises nothing (the next BatchNorm undoes the scale) and only shrinks what the layer can
    express. ``vector_lr_scale``: the vectors' rate as a multiple of ``lr``; a vector has few entries
    and AdamW's step is per entry, so the scales and shifts move slowly at a rate sized for matrices."""
    params = [p for p in model.parameters() if p.requires_grad]
    if scope == "all" and vector_lr_scale == 1.0:
        return [{"params": params, "weight_decay": weight_decay, "lr": lr}]
    vector_decay = weight_decay if scope == "all" else 0.0
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay, "lr": lr},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": vector_decay, "lr": lr * vector_lr_scale}]


class WeightAverage:
    """An exponential moving average of a model's weights and BatchNorm statistics, updated after
    every step. It is what validation sees, and what is selected and saved: over a short run the
    average sits nearer a minimum than the last step's weights, which still carry the step noise.
    The decay ramps up as (1 + n) / (10 + n) over the first updates, so the average follows the
    model early instead of holding on to its start."""

    def __init__(self, model: nn.Module, decay: float):
        import copy

        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for mine, theirs in zip(self.model.state_dict().values(), model.state_dict().values()):
            if mine.is_floating_point():
                mine.lerp_(theirs.detach(), 1.0 - decay)
            else:
                mine.copy_(theirs)

    def follow(self, model: nn.Module) -> None:
        """Plain attributes the state_dict does not hold (an MoE's gating temperature)."""
        if hasattr(model, "set_temperature"):
            self.model.set_temperature(model.temperature)


@torch.no_grad()
def full_size_statistics(model: nn.Module, images: torch.Tensor, mean, std, cfg: TrainConfig, epoch: int,
                         layout: torch.memory_format) -> nn.Module:
    """A copy of ``model`` with its BatchNorm statistics re-estimated on ``cfg.bn_recalibration_batches``
    seeded batches of full-size training images (uint8, on the model's device).

    After an epoch on smaller images (``low_res_epochs``) the running statistics are the small images',
    and at full size the weights score up to 16 points below what they are worth (docs/results.md,
    "Small epochs scored at full size"). Validation scores this copy, and selection keeps it: a small
    epoch is judged as the model it would be at full size. Training goes on from ``model``, and no
    global random number is drawn."""
    batches = calibration_batches(images, mean, std, cfg.seed + epoch, cfg.bn_recalibration_batches, cfg.batch_size,
                                  images.device)
    rescaled = copy.deepcopy(model)
    recalibrate_batchnorm(rescaled, [x.contiguous(memory_format=layout) for x in batches])
    return rescaled.eval()


def _check_finite(epoch: int, terms: dict[str, torch.Tensor], checkpoint: Path | None):
    for name, value in terms.items():
        if not torch.isfinite(value):
            where = f"; the last good checkpoint is kept at {checkpoint}" if checkpoint else ""
            raise MoEError(f"training diverged at epoch {epoch + 1}: the {name} loss is {value.item()}{where}"
                           " (try a lower lr)")


def fit(model: nn.Module, objective, train_set: Split, val_set: Split, cfg: TrainConfig, mean, std,
        checkpoint: str | Path | None = None, settings: dict | None = None,
        on_epoch: Callable[[dict, nn.Module], None] | None = None,
        progress: Progress | None = None, say: Callable[[str], None] = lambda s: None,
        start_is_candidate: bool = False) -> TrainResult:
    """Train with AdamW and a cosine LR schedule; keep the weights with the best validation accuracy
    (with ``cfg.ema_decay`` > 0, of the weights' moving average: ``WeightAverage``).

    ``objective``: what the model learns (``moe.objectives``): the loss of a batch, figures per epoch.
    ``checkpoint``: path of the resumable state, written after every epoch and removed at the end.
    ``settings``: anything besides ``cfg`` that must match for a resume (data, model choices).
    ``on_epoch(record, model)``: called after each epoch with the model validation saw (the weight
    average, if any; after an epoch on smaller images, a copy with full-size statistics:
    ``full_size_statistics``), and replayed for past epochs on resume (model None).
    The model is left with the best epoch's weights, in the state that epoch ran in.
    ``start_is_candidate``: the model as it starts (a merged model) is validated first and selected,
    as epoch 0, when no epoch beats it: training then never ends below where it started.

    Under torchrun each rank trains on its shard of every batch (``moe.distributed``); only rank 0
    reports, calls ``on_epoch`` and writes the checkpoint, and every rank resumes from it.
    """
    device = next(model.parameters()).device
    layout = memory_format_for(train_set.images.shape[-1], device)
    model.to(memory_format=layout)
    train_model = distributed.wrap(model)
    distributed.check_batch_size(cfg.batch_size, distributed.world_size())
    lead = distributed.is_rank_zero()
    if not lead:
        progress, on_epoch, say = None, None, (lambda s: None)
    # the uint8 training images live on the device (7,500 32x32 images are 23 MB); crops run there
    images, labels = train_set.images.to(device), train_set.labels.to(device)
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg.lr, cfg.weight_decay, cfg.weight_decay_scope,
                                                   cfg.vector_lr_scale), lr=cfg.lr)
    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    evaluated = average.model if average else model  # what validation sees and selection keeps
    steps_per_epoch = len(batch_order(len(train_set), cfg.batch_size, None, distributed.world_size()))
    scheduler = torch.optim.lr_scheduler.LambdaLR(  # stepped after every batch
        optimizer, lambda step: lr_factor(step, steps_per_epoch, cfg.num_epochs, cfg.warmup_epochs))
    loader_rng = torch.Generator().manual_seed(cfg.seed)
    first_flips = alternating_flips(len(train_set), cfg.seed) if cfg.flips == "alternating" else None
    full_size = train_set.images.shape[-1]
    low_res_size = scaled_size(full_size, cfg.low_res_scale) if cfg.low_res_epochs else None
    image_sizes = [low_res_size if epoch < cfg.low_res_epochs else full_size for epoch in range(cfg.num_epochs)]
    fingerprint = cfg.fingerprint(objective, settings)
    checkpoint = Path(checkpoint) if checkpoint else None

    start_epoch, best_acc, best_epoch, stale = 0, -1.0, -1, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history: list[dict] = []
    clock: list[dict] = []
    resumed_from = None
    if checkpoint and checkpoint.exists():
        state = safe_load(checkpoint)
        if state.get("fingerprint") != fingerprint:
            say(f"{checkpoint}: saved under different settings; starting fresh")
        else:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            loader_rng.set_state(state["loader_rng"])
            set_rng_state(state["rng"])
            start_epoch, best_acc, best_epoch, stale = state["epoch"], state["best_acc"], state["best_epoch"], state["stale"]
            best_state, history = state["best_state"], [_interned(r) for r in state["history"]]
            clock = state.get("clock", [])
            if average:
                average.model.load_state_dict(state["average"])
                average.updates = state["average_updates"]
            resumed_from = start_epoch
            say(f"resuming from {checkpoint} after epoch {start_epoch} of {cfg.num_epochs}")
            if on_epoch:
                for record in history:
                    on_epoch(record, None)

    start = state.get("start") if resumed_from is not None else None
    if start_is_candidate and resumed_from is None:
        val_logits, _ = predict(model, val_set.images, mean, std, precision=cfg.precision)
        start = {"epoch": 0, "val_accuracy": 100.0 * accuracy(val_logits, val_set.labels),
                 "temperature": getattr(model, "temperature", None)}
        best_acc, best_epoch = start["val_accuracy"], 0
        say(f"before training: validation accuracy {best_acc:.1f}% (kept unless an epoch beats it)")

    stopped_early = stale >= cfg.patience
    for epoch in range(start_epoch, cfg.num_epochs):
        if stopped_early:
            break
        started = time.perf_counter()
        objective.begin_epoch(model, epoch, cfg.num_epochs)
        model.train()
        batches = batch_order(len(train_set), cfg.batch_size, loader_rng, distributed.world_size())
        if progress:
            progress.start_epoch(epoch, cfg.num_epochs, len(batches), image_sizes)
        sums: dict[str, float] = {"loss": 0.0, "correct": 0, "seen": 0}
        for idx in batches:
            # every rank draws the whole global batch's crops (same generator state), then makes its own part
            dy, dx, mirrored = crop_flip_draws(len(idx), loader_rng)
            if first_flips is not None:  # the crops as drawn, the flips by the image and the epoch's parity
                mirrored = first_flips[idx] ^ bool(epoch % 2)
            dy, dx, mirrored = (distributed.shard(d) for d in (dy, dx, mirrored))
            mine = distributed.shard(idx.to(device))
            x = crop_and_flip(images[mine], dy, dx, mirrored)
            x = normalize(x, mean, std)
            if epoch < cfg.low_res_epochs:
                x = downscale(x, low_res_size)
            x = x.contiguous(memory_format=layout)
            y = labels[mine]
            with autocast(device, cfg.precision):
                step = objective.step(train_model, x, y, where=(mine, mirrored))
            _check_finite(epoch, {"total": step.loss, **step.terms},
                          checkpoint if checkpoint and checkpoint.exists() else None)
            optimizer.zero_grad(set_to_none=True)
            step.loss.backward()
            optimizer.step()
            if average:
                average.update(model)
            lr = optimizer.param_groups[0]["lr"]  # the rate of the epoch's last step (after any warmup)
            scheduler.step()
            n = len(y)
            correct = (step.logits.argmax(1) == y).sum().item()
            sums["loss"] += step.loss.item() * n
            sums["correct"] += correct
            sums["seen"] += n
            for name, value in step.terms.items():
                sums[name] = sums.get(name, 0.0) + value.item() * n
            if progress:
                progress.advance(step.loss.item(), correct / n)
        names = list(sums)  # the same order on every rank
        sums = dict(zip(names, distributed.sum_over_ranks([sums[n] for n in names])))
        objective.sum_over_ranks(distributed.sum_over_ranks)
        distributed.copy_buffers_from_rank_zero(model)  # every rank validates the same model
        if average:
            average.follow(model)

        validated = evaluated  # after a small epoch: its copy with full-size statistics
        if epoch < cfg.low_res_epochs and cfg.bn_recalibration_batches > 0:
            validated = full_size_statistics(evaluated, images, mean, std, cfg, epoch, layout)
        val_logits, val_gates = predict(validated, val_set.images, mean, std, precision=cfg.precision)
        val_acc = 100.0 * accuracy(val_logits, val_set.labels)
        seen = max(sums["seen"], 1)
        record = {"epoch": epoch + 1, "train_loss": sums["loss"] / seen, "train_accuracy": 100.0 * sums["correct"] / seen,
                  "val_loss": F.cross_entropy(val_logits, val_set.labels).item(), "val_accuracy": val_acc, "lr": lr}
        record.update({f"{name}_loss": sums[name] / seen for name in sums if name not in ("loss", "correct", "seen")})
        if cfg.low_res_epochs:  # the side of the images this epoch trained on (validation: at full size)
            record["image_size"] = image_sizes[epoch]
        record.update(objective.epoch_figures())
        record.update(objective.validation_figures(val_gates, val_set.labels, val_logits.shape[1]))
        if val_acc > best_acc:
            best_acc, best_epoch, stale = val_acc, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in validated.state_dict().items()}
        else:
            stale += 1
        record["best_val_accuracy"] = best_acc
        history.append(_interned(record))
        before = clock[-1] if clock else {"seconds": 0.0, "images_seen": 0}
        clock.append({"seconds": before["seconds"] + time.perf_counter() - started,
                      "images_seen": before["images_seen"] + int(sums["seen"]), "load": machine_load()})
        if progress:
            progress.end_epoch(record)
        if checkpoint and lead:
            save_torch({"fingerprint": fingerprint, "epoch": epoch + 1, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "loader_rng": loader_rng.get_state(), "rng": rng_state(), "best_acc": best_acc,
                        "best_epoch": best_epoch, "stale": stale, "best_state": best_state, "history": history,
                        "clock": clock, "start": start,
                        **({"average": average.model.state_dict(), "average_updates": average.updates} if average else {})},
                       checkpoint)
        if on_epoch:
            on_epoch(record, validated)
        if stale >= cfg.patience:
            stopped_early = True
            say(f"early stop after epoch {epoch + 1}: no better validation accuracy for {cfg.patience} epochs")

    result = TrainResult(best_state, best_epoch, best_acc, history, stopped_early, resumed_from, clock, start)
    model.load_state_dict(best_state)
    objective.select(model, result.best_record)
    return result
