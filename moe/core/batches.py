"""Training batches: the shuffled order and the original's augmentation (random crop with zero padding,
horizontal flip), run on whole uint8 batches on the batch's device."""

from __future__ import annotations

import torch

from ..base.errors import MoEError


def crop_flip_draws(n: int, generator: torch.Generator, pad: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random offsets (dy, dx) and flips for ``n`` images, drawn on the CPU from ``generator``, so
    every device and every process draws the same ones."""
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    return dy, dx, flip


def alternating_flips(n: int, seed: int) -> torch.Tensor:
    """Which of ``n`` images are mirrored in even epochs (a seeded random half); odd epochs mirror the
    others. airbench's derandomised flips: over any two epochs each image is seen both ways, where
    independent coin flips show a quarter of the images the same way twice."""
    return torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5


def crop_and_flip(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor,
                  pad: int = 4) -> torch.Tensor:
    """Crop each zero-padded uint8 image at its offset and flip it where asked, for a whole batch at
    once on the batch's device."""
    b, c, h, w = images.shape
    device = images.device
    dy, dx, flip = dy.to(device), dx.to(device), flip.to(device)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    cols = (dx[:, None] + torch.arange(w, device=device))[:, None, None, :].expand(b, c, h, w)
    out = padded.gather(2, (dy[:, None] + torch.arange(h, device=device))[:, None, :, None].expand(b, c, h, w + 2 * pad))
    out = out.gather(3, cols)
    out[flip] = out[flip].flip(3)
    return out


def scaled_size(size: int, scale: float) -> int:
    """The side of ``size``-pixel images scaled by ``scale``; the backbone's two poolings need 4 or more."""
    side = round(size * scale)
    if side < 4:
        raise MoEError(f"low_res_scale: {scale:g} of {size}-pixel images is {side} pixels; the network needs at least 4")
    return side


def downscale(x: torch.Tensor, side: int) -> torch.Tensor:
    """A float batch resized to ``side`` x ``side`` (bilinear, antialiased): progressive resizing's small
    images. The network is convolutional up to its global pooling, so it takes any size; at half the
    side an epoch takes about a third of the time, and a first epoch on such images leaves the model
    about a point ahead at equal seconds (docs/results.md, "Smaller images first")."""
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    return torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding and horizontal flip (the original's augmentation) of a batch."""
    return crop_and_flip(images, *crop_flip_draws(len(images), generator, pad), pad)


def batch_order(n: int, batch_size: int, generator: torch.Generator | None, shards: int = 1) -> list[torch.Tensor]:
    """Shuffled (or, without a generator, sequential) index batches; a last batch too short to give
    each of ``shards`` processes two samples joins the previous batch (BatchNorm needs two)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2 * shards:
        batches[-2] = torch.cat([batches[-2], batches.pop()])
    return batches
