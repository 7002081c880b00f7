"""BatchNorm outside training: folded into the layer before it, and its statistics re-estimated.

In eval mode a BatchNorm is a fixed per-channel scale and shift, so it can be merged into the
weights (and a new bias) of the convolution or linear layer that feeds it: one pass over the
activations fewer per BatchNorm, the same numbers up to float rounding. The folded model is a copy
for inference only; the model that trains and is saved keeps its BatchNorms and its keys.

Its running statistics describe the inputs it last trained on; for other inputs (a merged backbone,
weights trained on smaller images) ``recalibrate_batchnorm`` measures them anew.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from ..base.data import normalize
from .models import ConvBlock, DepthwiseSeparable

_FUSE = {(nn.Conv2d, nn.BatchNorm2d): fuse_conv_bn_eval, (nn.Linear, nn.BatchNorm1d): fuse_linear_bn_eval}


def _fuser(layer: nn.Module, norm: nn.Module):
    return next((fuse for (a, b), fuse in _FUSE.items() if type(layer) is a and type(norm) is b), None)


def _fold_pair(owner: nn.Module, layer_name: str, norm_name: str) -> bool:
    layer, norm = getattr(owner, layer_name), getattr(owner, norm_name)
    fuse = _fuser(layer, norm)
    if fuse is None or not norm.track_running_stats:
        return False
    setattr(owner, layer_name, fuse(layer, norm))
    setattr(owner, norm_name, nn.Identity())
    return True


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode copy of ``model`` with every BatchNorm that directly follows a convolution or a
    linear layer folded into it; returns the copy and how many were folded. A model with no BatchNorm
    (an ONNX teacher, ``moe.core.onnx_teachers``) is returned itself, in eval mode: nothing to fold."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model.eval(), 0
    folded = copy.deepcopy(model).eval()
    count = 0
    for module in list(folded.modules()):
        if isinstance(module, ConvBlock):
            count += _fold_pair(module, "conv", "bn")
        elif isinstance(module, DepthwiseSeparable):
            count += _fold_pair(module, "pointwise", "bn")
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:]):
                count += _fold_pair(module, first, second)
    return folded, count


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, batches) -> int:
    """Reset and re-estimate the running statistics of every BatchNorm in ``module`` on ``batches`` (its
    inputs); returns the images seen. No batches: the statistics are left as they are.

    Only the BatchNorms run in training mode: dropout and gate noise stay off, so the statistics are
    those of the activations inference sees, and no random number is drawn (a training run that
    re-estimates a copy's statistics between epochs goes on as if it had not)."""
    batches = list(batches)
    if not batches:
        return 0
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = {m: m.training for m in module.modules()}
    momenta = [m.momentum for m in norms]
    module.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all batches
        m.train()
    seen = 0
    for x in batches:
        module(x)
        seen += len(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    for m, training in modes.items():
        m.training = training
    return seen


def calibration_batches(images: torch.Tensor, mean, std, seed: int, num_batches: int, batch_size: int,
                        device) -> list[torch.Tensor]:
    """``num_batches`` seeded, normalised batches of ``images`` (uint8) on ``device``, for
    ``recalibrate_batchnorm``; a batch of one is dropped. The order comes from its own generator: the
    global random stream is not touched."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[: num_batches * batch_size]
    return [normalize(images[idx.to(images.device)].to(device), mean, std) for idx in order.split(batch_size)
            if len(idx) > 1]
