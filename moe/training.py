"""One training loop for teachers and the MoE: early stopping, resumable checkpoints, fault checks.

Every epoch ends with an atomic checkpoint holding everything needed to continue bit-for-bit on
CPU: model, optimizer, LR schedule, early-stopping state, best weights, history and every RNG state.
A checkpoint written under different settings is not resumed silently: the caller is told.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Split, augment, batch_order, normalize
from .errors import MoEError
from .formats import safe_load, save_torch
from .losses import moe_loss
from .models import MoEModel
from .runtime import autocast, rng_state, set_rng_state
from .schedules import temperature_at


@dataclass
class TrainConfig:
    num_epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 20
    batch_size: int = 32
    seed: int = 100
    diversity_weight: float = 0.1
    balance_weight: float = 0.5
    initial_temperature: float = 2.0
    final_temperature: float = 0.5
    precision: str = "fp32"  # resolved already: "bf16" or "fp32"

    def fingerprint(self, extra: dict | None = None) -> str:
        blob = json.dumps({**asdict(self), **(extra or {})}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Progress(Protocol):
    def start_epoch(self, epoch: int, num_epochs: int, num_batches: int) -> None: ...
    def advance(self, loss: float, accuracy: float) -> None: ...
    def end_epoch(self) -> None: ...


@dataclass
class TrainResult:
    best_state: dict
    best_epoch: int
    best_val_accuracy: float
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from: int | None = None

    @property
    def best_record(self) -> dict:
        """The history entry of the selected epoch (its temperature, for an MoE)."""
        return self.history[self.best_epoch - 1]


def _step_outputs(model, x):
    if isinstance(model, MoEModel):
        return model(x)
    return model(x), None


def eval_batches(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int = 256):
    """Normalised channels_last batches of uint8 images on the model's device; the model in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(images), batch_size):
        yield normalize(images[start:start + batch_size], mean, std).to(device).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int = 256,
            precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits (and gates for an MoE) for uint8 images, in eval mode."""
    logits, all_gates = [], []
    for x in eval_batches(model, images, mean, std, batch_size):
        with autocast(x.device, precision):
            out, g = _step_outputs(model, x)
        if g is not None:
            all_gates.append(g.float().cpu())
        logits.append(out.float().cpu())
    return torch.cat(logits), (torch.cat(all_gates) if all_gates else None)


def _check_finite(epoch: int, terms: dict[str, torch.Tensor], checkpoint: Path | None):
    for name, value in terms.items():
        if not torch.isfinite(value):
            where = f"; the last good checkpoint is kept at {checkpoint}" if checkpoint else ""
            raise MoEError(f"training diverged at epoch {epoch + 1}: the {name} loss is {value.item()}{where}"
                           " (try a lower lr)")


def train(model: nn.Module, train_set: Split, val_set: Split, cfg: TrainConfig, mean, std,
          checkpoint: str | Path | None = None, settings: dict | None = None,
          on_epoch: Callable[[dict, nn.Module], None] | None = None,
          progress: Progress | None = None, say: Callable[[str], None] = lambda s: None) -> TrainResult:
    """Train with AdamW and a cosine LR schedule; keep the weights with the best validation accuracy.

    ``checkpoint``: path of the resumable state, written after every epoch and removed at the end.
    ``settings``: anything besides ``cfg`` that must match for a resume (data, model choices).
    ``on_epoch(record, model)``: called after each epoch, and replayed for past epochs on resume.
    """
    device = next(model.parameters()).device
    is_moe = isinstance(model, MoEModel)
    model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.num_epochs, 1))
    loader_rng = torch.Generator().manual_seed(cfg.seed)
    fingerprint = cfg.fingerprint(settings)
    checkpoint = Path(checkpoint) if checkpoint else None

    start_epoch, best_acc, best_epoch, stale = 0, -1.0, -1, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history: list[dict] = []
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
            best_state, history = state["best_state"], state["history"]
            resumed_from = start_epoch
            say(f"resuming from {checkpoint} after epoch {start_epoch} of {cfg.num_epochs}")
            if on_epoch:
                for record in history:
                    on_epoch(record, None)

    stopped_early = stale >= cfg.patience
    for epoch in range(start_epoch, cfg.num_epochs):
        if stopped_early:
            break
        temperature = temperature_at(epoch, cfg.num_epochs, cfg.initial_temperature, cfg.final_temperature)
        if is_moe:
            model.set_temperature(temperature)
        model.train()
        batches = batch_order(len(train_set), cfg.batch_size, loader_rng)
        if progress:
            progress.start_epoch(epoch, cfg.num_epochs, len(batches))
        sums = {"loss": 0.0, "task": 0.0, "diversity": 0.0, "balance": 0.0, "correct": 0, "seen": 0}
        usage = torch.zeros(model.num_experts) if is_moe else None
        entropy = 0.0
        for idx in batches:
            x = augment(train_set.images[idx], loader_rng)
            x = normalize(x, mean, std).to(device).contiguous(memory_format=torch.channels_last)
            y = train_set.labels[idx].to(device)
            with autocast(device, cfg.precision):
                logits, gates = _step_outputs(model, x)
            if is_moe:
                terms = moe_loss(logits, y, gates, cfg.diversity_weight, cfg.balance_weight)
                named = {"total": terms.total, "task": terms.task, "diversity": terms.diversity, "balance": terms.balance}
                loss = terms.total
            else:
                loss = F.cross_entropy(logits.float(), y)
                named = {"task": loss}
            _check_finite(epoch, named, checkpoint if checkpoint and checkpoint.exists() else None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = len(y)
            correct = (logits.argmax(1) == y).sum().item()
            sums["loss"] += loss.item() * n
            sums["correct"] += correct
            sums["seen"] += n
            if is_moe:
                sums["task"] += terms.task.item() * n
                sums["diversity"] += terms.diversity.item() * n
                sums["balance"] += terms.balance.item() * n
                g = gates.detach().float().cpu()
                usage += g.sum(0)
                entropy += -(g * g.clamp_min(1e-12).log()).sum().item()
            if progress:
                progress.advance(loss.item(), correct / n)
        scheduler.step()

        val_logits, val_gates = predict(model, val_set.images, mean, std, precision=cfg.precision)
        val_loss = F.cross_entropy(val_logits, val_set.labels).item()
        val_acc = (val_logits.argmax(1) == val_set.labels).float().mean().item()
        seen = max(sums["seen"], 1)
        record = {"epoch": epoch + 1, "train_loss": sums["loss"] / seen, "train_accuracy": sums["correct"] / seen,
                  "val_loss": val_loss, "val_accuracy": val_acc, "lr": optimizer.param_groups[0]["lr"]}
        if is_moe:
            record.update({"task_loss": sums["task"] / seen, "diversity_loss": sums["diversity"] / seen,
                           "balance_loss": sums["balance"] / seen, "temperature": temperature,
                           "routing_entropy": entropy / seen / math.log(model.num_experts)})
            record.update({f"expert_usage_{i + 1}": u for i, u in enumerate((usage / seen).tolist())})
        if val_acc > best_acc:
            best_acc, best_epoch, stale = val_acc, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        record["best_val_accuracy"] = best_acc
        history.append(record)
        if progress:
            progress.end_epoch()
        if checkpoint:
            save_torch({"fingerprint": fingerprint, "epoch": epoch + 1, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "loader_rng": loader_rng.get_state(), "rng": rng_state(), "best_acc": best_acc,
                        "best_epoch": best_epoch, "stale": stale, "best_state": best_state, "history": history},
                       checkpoint)
        if on_epoch:
            on_epoch(record, model)
        if stale >= cfg.patience:
            stopped_early = True
            say(f"early stop after epoch {epoch + 1}: no better validation accuracy for {cfg.patience} epochs")

    return TrainResult(best_state, best_epoch, best_acc, history, stopped_early, resumed_from)
