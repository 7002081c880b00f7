"""Bring independently trained teachers' channels into one order before their backbones are averaged.

Two teachers trained from different random starts compute similar features in different channel
orders, so the element-wise mean of their weights mixes unrelated channels (the merged model lands
near chance). Reordering a layer's output channels, together with the next layer's inputs, leaves a
network's function unchanged; the permutation that makes every teacher's channel k carry the same
feature is found from data (activation matching, as in Git Re-Basin and ZipIt!):

1. every teacher runs on the same training images; at each permutation point the correlation of
   every channel with every other (all teachers' channels together) is accumulated;
2. one linear assignment per point matches each teacher to the first, then rounds re-match each
   teacher to the sum of the others' (already aligned) correlations;
3. each teacher's weights are permuted (``permute_teacher``): an exact re-ordering of its function.

The activations at a point do not depend on the permutations chosen at other points (those only
re-order the channels in between), so one pass over the images serves every point and round.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.optimize import linear_sum_assignment

from ..base.data import normalize
from ..base.errors import MoEError
from .folding import fold_batchnorm
from .models import TeacherCNN
from .runtime import memory_format_for

# The teacher's permutation points, in forward order. Each: the module whose output is the point's
# activation, its width, the tensors whose output channels (dim 0) move with it, and those whose
# input channels (dim 1) do. A residual block's last main-path conv and its 1x1 shortcut write the
# same stream, so they share one point; residual2's inner conv is free. The 1x1 conv to 512 feeds the
# expert block: its depthwise filters (one per channel, dim 0) and the pointwise inputs move with it.
_BN = ("weight", "bias", "running_mean", "running_var")
POINTS: dict[str, tuple[str, int, tuple[str, ...], tuple[str, ...]]] = {
    "conv1": ("conv1", 64, ("conv1.conv.weight", *(f"conv1.bn.{b}" for b in _BN)),
              ("residual1.main_path.0.conv.weight", "residual1.shortcut.weight")),
    "residual1": ("residual1", 128, ("residual1.main_path.0.conv.weight", *(f"residual1.main_path.0.bn.{b}" for b in _BN),
                                     "residual1.shortcut.weight"),
                  ("residual2.main_path.0.conv.weight", "residual2.shortcut.weight")),
    "residual2.inner": ("residual2.main_path.0", 256, ("residual2.main_path.0.conv.weight",
                                                       *(f"residual2.main_path.0.bn.{b}" for b in _BN)),
                        ("residual2.main_path.1.conv.weight",)),
    "residual2": ("residual2", 256, ("residual2.main_path.1.conv.weight", *(f"residual2.main_path.1.bn.{b}" for b in _BN),
                                     "residual2.shortcut.weight"),
                  ("conv2.conv.weight",)),
    "conv2": ("conv2", 512, ("conv2.conv.weight", *(f"conv2.bn.{b}" for b in _BN), "conv3.0.depthwise.weight"),
              ("conv3.0.pointwise.weight",)),
}
# correlations below this are taken as 0: a constant channel has no direction to match
_EPS = 1e-8


def permute_teacher(teacher: TeacherCNN, perms: dict[str, torch.Tensor]) -> TeacherCNN:
    """A copy of ``teacher`` whose channel k at each point is the original's channel ``perms[point][k]``
    (same logits up to float rounding). Points missing from ``perms`` keep their order."""
    state = {k: v.clone() for k, v in teacher.state_dict().items()}
    for point, perm in perms.items():
        _, width, outputs, inputs = POINTS[point]
        if sorted(perm.tolist()) != list(range(width)):
            raise MoEError(f"alignment: the permutation at {point} is not a bijection of its {width} channels")
        for key in outputs:
            state[key] = state[key][perm]
        for key in inputs:
            state[key] = state[key][:, perm]
    copy = TeacherCNN(teacher.head.out_features)
    copy.load_state_dict(state)
    return copy.train(teacher.training)


class _Moments:
    """Running sums for the correlation of every channel with every other at one point."""

    def __init__(self, width: int):
        self.sum = torch.zeros(width, dtype=torch.float64)
        self.outer = torch.zeros(width, width, dtype=torch.float64)
        self.count = 0

    def add(self, activations: torch.Tensor) -> None:
        """``activations``: positions x channels (float32)."""
        self.sum += activations.sum(0).double()  # float32 within a batch, float64 across batches
        self.outer += (activations.T @ activations).double()
        self.count += len(activations)

    def correlation(self) -> torch.Tensor:
        mean = self.sum / max(self.count, 1)
        cov = self.outer / max(self.count, 1) - mean[:, None] * mean[None, :]
        std = cov.diagonal().clamp_min(0).sqrt()
        live = std > _EPS
        corr = torch.zeros_like(cov)
        corr[live[:, None] & live[None, :]] = (cov / (std[:, None] * std[None, :]).clamp_min(_EPS))[
            live[:, None] & live[None, :]]
        return corr.clamp(-1, 1)


@torch.no_grad()
def activation_correlations(teachers: list[TeacherCNN], images: torch.Tensor, normalisations: list[tuple],
                            batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Per point, the (T*c) x (T*c) correlation of all teachers' channels over every image and
    position; teacher t's channels are rows t*c .. t*c + c - 1. ``normalisations``: each teacher's
    (mean, std), the inputs it was trained on."""
    if len(images) < 2:
        raise MoEError(f"merge.alignment_images: at least 2 training images are needed to correlate channels, got {len(images)}")
    device = next(teachers[0].parameters()).device
    layout = memory_format_for(images.shape[-1], device, training=False)
    teachers = [fold_batchnorm(t.eval())[0].to(memory_format=layout) for t in teachers]  # copies, for speed
    moments = {point: _Moments(width * len(teachers)) for point, (_, width, _, _) in POINTS.items()}
    captured: dict[str, list[torch.Tensor]] = {point: [] for point in POINTS}
    hooks = []
    for teacher in teachers:
        for point, (module, _, _, _) in POINTS.items():
            hooks.append(teacher.get_submodule(module).register_forward_hook(
                lambda _m, _i, out, point=point: captured[point].append(out.float())))
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].to(device)
            for teacher, (mean, std) in zip(teachers, normalisations):
                teacher(normalize(batch, mean, std).contiguous(memory_format=layout))
            for point in POINTS:  # positions x (all teachers' channels)
                outs = captured[point]
                moments[point].add(torch.cat([o.permute(0, 2, 3, 1).reshape(-1, o.shape[1]) for o in outs], 1))
                outs.clear()
    finally:
        for h in hooks:
            h.remove()
    return {point: m.correlation() for point, m in moments.items()}


def _block(corr: torch.Tensor, i: int, j: int, width: int) -> torch.Tensor:
    return corr[i * width:(i + 1) * width, j * width:(j + 1) * width]


def _assign(score: torch.Tensor) -> torch.Tensor:
    """The permutation p maximising sum_k score[k, p[k]]."""
    rows, cols = linear_sum_assignment(score.numpy(), maximize=True)
    return torch.as_tensor(cols[rows.argsort()], dtype=torch.long)


def match_channels(corr: torch.Tensor, num_teachers: int, rounds: int) -> list[torch.Tensor]:
    """One permutation per teacher at one point: each matched to teacher 1 first, then ``rounds`` of
    re-matching every teacher to the others' aligned channels (the sum of its correlations with them)."""
    width = len(corr) // num_teachers
    perms = [torch.arange(width)] + [_assign(_block(corr, 0, t, width)) for t in range(1, num_teachers)]
    for _ in range(rounds if num_teachers > 2 else 0):  # with two teachers the first match is final
        changed = False
        for t in range(num_teachers):
            score = sum(_block(corr, o, t, width)[perms[o]] for o in range(num_teachers) if o != t)
            new = _assign(score)
            changed |= not torch.equal(new, perms[t])
            perms[t] = new
        if not changed:
            break
    return perms


def mean_matched_correlation(corr: torch.Tensor, perms: list[torch.Tensor]) -> float:
    """Mean over teacher pairs and channels k of corr(teacher i's aligned k, teacher j's aligned k)."""
    t, width = len(perms), len(perms[0])
    pairs = [_block(corr, i, j, width)[perms[i], perms[j]].mean().item() for i in range(t) for j in range(i + 1, t)]
    return sum(pairs) / len(pairs)


@dataclass
class Alignment:
    perms: list[dict[str, torch.Tensor]]  # per teacher, point -> permutation
    correlation_before: dict[str, float]  # point -> mean matched correlation, channels in their own order
    correlation_after: dict[str, float]


def align_teachers(teachers: list[TeacherCNN], images: torch.Tensor, normalisations: list[tuple],
                   rounds: int) -> Alignment:
    """Permutations that bring every teacher into one channel order, with what they achieved."""
    correlations = activation_correlations(teachers, images, normalisations)
    identity = [torch.arange(POINTS[p][1]) for p in POINTS]
    perms: list[dict[str, torch.Tensor]] = [{} for _ in teachers]
    before, after = {}, {}
    for (point, corr), ident in zip(correlations.items(), identity):
        found = match_channels(corr, len(teachers), rounds)
        before[point] = round(mean_matched_correlation(corr, [ident] * len(teachers)), 4)
        after[point] = round(mean_matched_correlation(corr, found), 4)
        for t, perm in enumerate(found):
            perms[t][point] = perm
    return Alignment(perms, before, after)
