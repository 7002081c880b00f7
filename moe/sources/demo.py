"""A synthetic look-alike of the course archive, generated from a seed in seconds.

Each class is a combination of a shape, a colour and a texture; no single attribute identifies a
class among all of the task's classes. Every image places its object at a random position, size and angle over a random gradient
background with distractor shapes and pixel noise. The files are written in exactly the layout and
format of the real archive, so everything downstream reads demo and real data by the same code.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..base.errors import MoEError
from ..base.formats import write_split
from ..base.tasks import TaskSpec

SHAPES = ("disk", "square", "triangle", "ring", "cross", "diamond")
PALETTE = torch.tensor([  # RGB in 0..1
    [0.90, 0.15, 0.10], [0.15, 0.70, 0.20], [0.15, 0.30, 0.95],
    [0.95, 0.85, 0.10], [0.85, 0.20, 0.80], [0.08, 0.08, 0.10],
])
TEXTURES = ("solid", "stripes", "checker", "dots")
SETTINGS = torch.tensor([  # background tint shared by a teacher's classes, like a superclass's scenes
    [0.78, 0.68, 0.48], [0.30, 0.52, 0.58], [0.58, 0.52, 0.68], [0.42, 0.58, 0.36],
])


def class_attributes(spec: TaskSpec, seed: int) -> list[tuple[int, int, int, int]]:
    """(shape, colour, texture, setting) per class, like superclasses in real data.

    Shape, texture and background setting are the group cue: every class of a teacher (its
    lowest-numbered owner) shares them. Colours are distinct within each teacher, so a teacher tells
    its own classes apart by colour, while the merged model needs the group cue and the colour together.
    """
    g = torch.Generator().manual_seed(seed)
    colour_order = torch.randperm(len(PALETTE), generator=g).tolist()
    shape_order = torch.randperm(len(SHAPES), generator=g).tolist()
    attrs = []
    used: dict[int, set[tuple[int, int]]] = {i: set() for i in range(len(spec.teachers))}  # (colour, texture)
    limit = len(SHAPES) * len(SETTINGS)
    if len(spec.teachers) > limit:
        raise MoEError(f"task {spec.name}: the demo generator tells at most {limit} teachers' groups apart")
    for cid in spec.class_ids:
        owners = spec.owners(cid)
        group = owners[0]
        texture = group % len(TEXTURES)
        # the group's texture with a colour new to every owner; past the palette, other textures too
        choices = [(c, texture) for c in colour_order] + [(c, x) for x in range(len(TEXTURES)) if x != texture
                                                           for c in colour_order]
        free = [ct for ct in choices if all(ct[0] not in {u[0] for u in used[o]} for o in owners)]
        free = free or [ct for ct in choices if all(ct not in used[o] for o in owners)]
        if not free:
            raise MoEError(f"task {spec.name}: the demo generator tells at most {len(PALETTE) * len(TEXTURES)} "
                           f"classes of one teacher apart")
        colour, texture = free[0]
        for o in owners:
            used[o].add((colour, texture))
        # (shape, setting) differs between up to 24 groups; the first four keep their original cues
        attrs.append((shape_order[group % len(SHAPES)], colour, texture, (group + group // len(SHAPES)) % len(SETTINGS)))
    return attrs


def _shape_masks(shape_ids, u, v, radius):
    """Soft-edged masks (N x H x W) for each image's shape in its rotated coordinates u, v."""
    r = radius[:, None, None]
    dist = torch.sqrt(u * u + v * v)
    candidates = torch.stack([
        r - dist,                                                    # disk
        r * 0.85 - torch.maximum(u.abs(), v.abs()),                  # square
        torch.minimum(r * 0.5 - v, (r * 0.9 + v) * 0.5 - u.abs()),  # triangle
        torch.minimum(r - dist, dist - r * 0.4),                     # ring
        torch.maximum(torch.minimum(r - u.abs(), r * 0.35 - v.abs()),
                      torch.minimum(r - v.abs(), r * 0.35 - u.abs())),  # cross
        r - (u.abs() + v.abs()),                                     # diamond
    ], dim=1)
    sdf = candidates.gather(1, shape_ids[:, None, None, None].expand(-1, 1, *u.shape[1:])).squeeze(1)
    return torch.sigmoid(sdf * 2.0)


def _textures(texture_ids, u, v, radius):
    """Per-pixel shade (N x H x W) in 0.75..1 for each image's texture."""
    period = (radius * 0.55)[:, None, None]
    stripes = (torch.sin(u / period * math.pi) > 0).float()
    checker = ((torch.sin(u / period * math.pi) * torch.sin(v / period * math.pi)) > 0).float()
    dots = ((torch.sin(u / period * math.pi * 1.3) * torch.sin(v / period * math.pi * 1.3)) > 0.45).float()
    solid = torch.ones_like(u)
    pattern = torch.stack([solid, stripes, checker, dots], 1)
    pick = pattern.gather(1, texture_ids[:, None, None, None].expand(-1, 1, *u.shape[1:])).squeeze(1)
    return 0.75 + 0.25 * pick


def _draw(canvas, g, shape_ids, colours, texture_ids, size, scale, jitter):
    n = len(shape_ids)
    ax = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    cx = size * (0.5 + (torch.rand(n, generator=g) - 0.5) * jitter)
    cy = size * (0.5 + (torch.rand(n, generator=g) - 0.5) * jitter)
    radius = size * scale * (0.75 + 0.5 * torch.rand(n, generator=g))
    angle = torch.rand(n, generator=g) * 2 * math.pi
    dx, dy = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    mask = _shape_masks(shape_ids, u, v, radius)[:, None]
    shade = _textures(texture_ids, u, v, radius)[:, None]
    colour = (colours + 0.08 * torch.randn(n, 3, generator=g)).clamp(0, 1)[:, :, None, None]
    return canvas * (1 - mask) + colour * shade * mask


def render_class(attrs: tuple[int, int, int, int], n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """n images (uint8, n x 3 x size x size) of one class."""
    shape, colour, texture, setting = attrs
    # background: a two-colour vertical/horizontal gradient around the group's tint
    tint = SETTINGS[setting].view(1, 3, 1, 1)
    a = (tint + (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * 0.3).clamp(0, 1)
    b = (tint + (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * 0.3).clamp(0, 1)
    ramp = torch.linspace(0, 1, size)
    horizontal = torch.rand(n, generator=g) < 0.5
    t = torch.where(horizontal[:, None, None, None], ramp.view(1, 1, 1, size), ramp.view(1, 1, size, 1))
    canvas = (a * (1 - t) + b * t).expand(n, 3, size, size).clone()
    # a distractor: a small random shape, colour and texture
    canvas = _draw(canvas, g, torch.randint(0, len(SHAPES), (n,), generator=g),
                   PALETTE[torch.randint(0, len(PALETTE), (n,), generator=g)],
                   torch.randint(0, len(TEXTURES), (n,), generator=g), size, 0.12, 0.9)
    canvas = _draw(canvas, g, torch.full((n,), shape), PALETTE[colour].expand(n, 3),
                   torch.full((n,), texture), size, 0.26, 0.45)
    canvas = canvas + 0.06 * torch.randn(canvas.shape, generator=g)
    return (canvas.clamp(0, 1) * 255).round().to(torch.uint8)


def generate_demo_archive(spec: TaskSpec, root: str | Path, train_per_class: int, test_per_class: int,
                          seed: int) -> dict:
    """Write the task's split files under ``root`` in the archive's layout; return a summary.

    A class shared by two teachers has the same images in both teachers' files, as in the real data.
    """
    attrs = class_attributes(spec, seed)
    images = {}
    for part, per_class, offset in (("train", train_per_class, 0), ("test", test_per_class, 1)):
        for c, cid in enumerate(spec.class_ids):
            g = torch.Generator().manual_seed(seed * 1_000_003 + cid * 2 + offset)
            images[part, cid] = render_class(attrs[c], per_class, spec.image_size, g)
    for t in spec.teachers:
        for part, rel in (("train", t.train_file), ("test", t.test_file)):
            ids = sorted(t.class_ids)
            imgs = torch.cat([images[part, cid] for cid in ids])
            labels = torch.cat([torch.full((len(images[part, cid]),), cid, dtype=torch.int64) for cid in ids])
            g = torch.Generator().manual_seed(seed + len(rel))
            perm = torch.randperm(len(labels), generator=g)  # mixed order, like the real files
            write_split(Path(root) / rel, imgs[perm], labels[perm], spec.data_format, indices=perm.tolist())
    return {"classes": spec.num_classes, "train_per_class": train_per_class, "test_per_class": test_per_class,
            "attributes": {spec.class_names[c]: [SHAPES[a[0]], int(a[1]), TEXTURES[a[2]], int(a[3])] for c, a in enumerate(attrs)}}
