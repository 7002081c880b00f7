"""Running a trained model: normalised batches in eval mode, logits (and gates), accuracy.

Every figure of accuracy in the project comes from ``accuracy`` here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..base.data import normalize
from ..base.errors import MoEError
from ..base.images import read_image
from .folding import fold_batchnorm
from .runtime import autocast, memory_format_for

# images per inference batch: at 32x32 with AVX2 kernels 128 ran 232 img/s, 256 ran 201 (cache)
EVAL_BATCH = 128


def eval_batches(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int = EVAL_BATCH):
    """Normalised batches of uint8 images on the model's device, in the layout that is faster there
    for inference; the model in eval mode and in that layout."""
    model.eval()
    device = next(model.parameters()).device
    layout = memory_format_for(images.shape[-1], device, training=False)
    model.to(memory_format=layout)
    for start in range(0, len(images), batch_size):
        yield normalize(images[start:start + batch_size].to(device), mean, std).contiguous(memory_format=layout)


def logits_and_gates(outputs) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A teacher returns logits; an MoE returns (logits, gates)."""
    return outputs if isinstance(outputs, tuple) else (outputs, None)


def views(x: torch.Tensor, flip: bool, shift: int = 0) -> list[torch.Tensor]:
    """The batch, and with ``flip`` its mirror image too; with ``shift``, each of those also moved
    ``shift`` pixels up-left and down-right, edges mirrored (test-time augmentation, as in airbench:
    the training crops flip and move images, so these views are as familiar to the model as the image)."""
    plain = [x, x.flip(3)] if flip else [x]
    if not shift:
        return plain
    height, width = x.shape[-2:]
    if shift >= min(height, width):
        raise MoEError(f"tta_shift: {shift} pixels is too far for {height}x{width} images "
                       f"(at most {min(height, width) - 1})")
    moved = []
    for v in plain:
        padded = F.pad(v, (shift,) * 4, mode="reflect")
        moved += [padded[..., :height, :width], padded[..., 2 * shift:, 2 * shift:]]
    return plain + moved


def mean_over_views(model: nn.Module, x: torch.Tensor, flip: bool, shift: int = 0):
    """The model's output (a tensor, or a tuple of them), averaged over ``views``."""
    outputs = [model(v) for v in views(x, flip, shift)]
    if len(outputs) == 1:
        return outputs[0]
    if isinstance(outputs[0], tuple):
        return tuple(sum(parts) / len(parts) for parts in zip(*outputs))
    return sum(outputs) / len(outputs)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int = EVAL_BATCH,
            precision: str = "fp32", flip: bool = False, shift: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits (and gates for an MoE) for uint8 images, in eval mode (BatchNorm folded: ``moe.folding``);
    ``flip``, ``shift``: averaged over those test-time views (``views``)."""
    model, _ = fold_batchnorm(model)
    logits, all_gates = [], []
    for x in eval_batches(model, images, mean, std, batch_size):
        with autocast(x.device, precision):
            out, g = logits_and_gates(mean_over_views(model, x, flip, shift))
        if g is not None:
            all_gates.append(g.float().cpu())
        logits.append(out.float().cpu())
    return torch.cat(logits), (torch.cat(all_gates) if all_gates else None)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images whose top logit is their label (0..1)."""
    return (logits.argmax(1) == labels).float().mean().item()


def classify_files(model: nn.Module, files, image_size: int, mean, std, class_names, expert_names,
                   top: int = 3, flip: bool = False, shift: int = 0) -> list[dict]:
    """One row per file: its top classes with probabilities and each expert's gate weight, or the
    reason it could not be read (the other files are classified all the same)."""
    rows, images, readable = [], [], []
    for f in files:
        try:
            images.append(read_image(f, image_size))
            readable.append(len(rows))
            rows.append({"image": str(f)})
        except MoEError as e:
            rows.append({"image": str(f), "error": str(e)})
    if images:
        logits, gates = predict(model, torch.stack(images), mean, std, flip=flip, shift=shift)
        probs = logits.softmax(1)
        for i, p, g in zip(readable, probs, gates):
            best = p.topk(min(top, len(class_names)))
            rows[i]["top"] = [{"class": class_names[c], "probability": round(v, 4)}
                              for v, c in zip(best.values.tolist(), best.indices.tolist())]
            rows[i]["gates"] = {name: round(w, 4) for name, w in zip(expert_names, g.tolist())}
    return rows
