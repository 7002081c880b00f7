"""Zip the teachers' backbones into one (ZipIt!, Stoica et al., ICLR 2024): merge correlated channels,
also two channels of the same teacher, instead of only matching teacher to teacher.

A permutation (``moe.alignment``) pairs channel k of every teacher with channel k of the others,
even where the teachers learnt nothing alike. Zipping pools every teacher's channels at a point and
groups them by correlation into as many groups as the point has channels, a group being any
channels that compute the same feature, whoever computes it. Each layer is then rewritten through
two matrices per teacher and point:

    merge    M_t  (c x c): merged channel k is the mean of its group's channels (teacher t's share)
    unmerge  U_t  (c x c): teacher t's channel j reads merged channel group(t, j)

    merged weight = sum over teachers t of  M_t(out) . W_t . U_t(in)

With a permutation as the grouping (one channel of each teacher per group), this is exactly the
permuted teachers' mean; with the identity, the plain mean. The 1x1 conv to 512 stays a permutation
point: the experts after it keep each teacher's own depthwise filters, one input channel each, so
every teacher's channels there must be a bijection onto the merged ones. BatchNorm weights and biases
move with their outputs; running statistics too, and the merge re-estimates them afterwards.
"""

from __future__ import annotations

import numpy as np
import torch

from .alignment import POINTS, Alignment, activation_correlations, match_channels, mean_matched_correlation
from .models import BACKBONE_OF_TEACHER

# the points whose channels are zipped; the last (conv2 -> experts) is matched by permutation
ZIP_POINTS = ("conv1", "residual1", "residual2.inner", "residual2")


def zip_groups(corr: torch.Tensor, num_teachers: int) -> torch.Tensor:
    """For each of the T*c channels (teacher t's channel j at row t*c + j), its group in 0..c-1.

    Greedy, as ZipIt!: join the two most correlated groups (a group's correlation with another is the
    size-weighted mean of its members'), until c groups remain. A group holds at most T channels
    while two smaller ones can still be joined, so that no feature swallows the others."""
    n = len(corr)
    width = n // num_teachers
    sim = corr.double().numpy().copy()  # group-to-group correlation, rows of live groups
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    group = np.arange(n)  # each channel's group, named by one of its members

    def joinable(i, limit):  # may group i join each other group (size limit, alive, not itself)
        ok = alive & (size + size[i] <= limit)
        ok[i] = False
        return ok

    limit = num_teachers
    score = np.where(alive[None, :] & ~np.eye(n, dtype=bool), sim, -np.inf)  # -inf: may not join
    for _ in range(n - width):
        if not np.isfinite(score.max()):  # every pair too big: the smallest pairs may join
            limit = np.sort(size[alive])[:2].sum()
            score = np.stack([np.where(joinable(i, limit), sim[i], -np.inf) if alive[i] else np.full(n, -np.inf)
                              for i in range(n)])
        i, j = np.unravel_index(np.argmax(score), score.shape)
        merged = (size[i] * sim[i] + size[j] * sim[j]) / (size[i] + size[j])
        sim[i], sim[:, i] = merged, merged
        size[i] += size[j]
        alive[j] = False
        group[group == j] = i
        score[j], score[:, j] = -np.inf, -np.inf
        row = np.where(joinable(i, limit), sim[i], -np.inf)
        score[i], score[:, i] = row, row
    _, labels = np.unique(group, return_inverse=True)
    return torch.as_tensor(labels, dtype=torch.long)


def matrices_from_groups(groups: torch.Tensor, num_teachers: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per teacher, its block of the merge (c x c, rows of the full M sum to 1) and unmerge (c x c) matrix."""
    width = len(groups) // num_teachers
    sizes = torch.bincount(groups, minlength=width).double()
    merge, unmerge = [], []
    for t in range(num_teachers):
        mine = groups[t * width:(t + 1) * width]
        u = torch.zeros(width, width, dtype=torch.float64)
        u[torch.arange(width), mine] = 1.0  # teacher's channel j <- merged channel mine[j]
        unmerge.append(u)
        merge.append(u.T / sizes[:, None])
    return merge, unmerge


def matrices_from_perms(perms: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The merge and unmerge blocks of a permutation: merged channel k = mean of every teacher's perm_t[k]."""
    width = len(perms[0])
    groups = torch.empty(len(perms) * width, dtype=torch.long)
    for t, perm in enumerate(perms):
        groups[t * width + perm] = torch.arange(width)
    return matrices_from_groups(groups, len(perms))


def zipped_backbone(states: list[dict], merge: dict[str, list[torch.Tensor]],
                    unmerge: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The merged teacher-backbone tensors (teacher key names): sum over teachers of M_t(out) W_t U_t(in).
    ``states``: the teachers' state_dicts; ``merge``/``unmerge``: point -> per-teacher blocks."""
    out_point = {key: p for p, (_, _, outputs, _) in POINTS.items() for key in outputs}
    in_point = {key: p for p, (_, _, _, inputs) in POINTS.items() for key in inputs}
    merged = {}
    for key, first in states[0].items():
        if key.split(".")[0] not in BACKBONE_OF_TEACHER:
            continue  # the expert block and the head are kept per teacher
        if not first.is_floating_point():
            merged[key] = first.clone()  # num_batches_tracked
            continue
        total = torch.zeros(first.shape, dtype=torch.float64)
        for t, state in enumerate(states):
            x = state[key].double()
            if key in out_point:
                x = torch.tensordot(merge[out_point[key]][t], x, dims=([1], [0]))
            if key in in_point:
                x = torch.tensordot(x, unmerge[in_point[key]][t], dims=([1], [0])).movedim(-1, 1)
            total += x
        merged[key] = total.to(first.dtype)
    return merged


def zip_teachers(teachers, images: torch.Tensor, normalisations: list[tuple], rounds: int):
    """The zipped backbone (teacher key names), each teacher's permutation at conv2 (for its expert),
    and per point the mean correlation before (channel k with channel k) and after (zipped points: of
    the channels that share a group; conv2: of the matched channels)."""
    correlations = activation_correlations(teachers, images, normalisations)
    num = len(teachers)
    merge, unmerge, before, after = {}, {}, {}, {}
    conv2_perms = None
    for point, corr in correlations.items():
        width = len(corr) // num
        before[point] = round(mean_matched_correlation(corr, [torch.arange(width)] * num), 4)
        if point in ZIP_POINTS:
            groups = zip_groups(corr, num)
            merge[point], unmerge[point] = matrices_from_groups(groups, num)
            after[point] = round(group_correlation(corr, groups), 4)
        else:
            conv2_perms = match_channels(corr, num, rounds)
            merge[point], unmerge[point] = matrices_from_perms(conv2_perms)
            after[point] = round(mean_matched_correlation(corr, conv2_perms), 4)
    backbone = zipped_backbone([t.state_dict() for t in teachers], merge, unmerge)
    return backbone, Alignment([{"conv2": p} for p in conv2_perms], before, after)


def group_correlation(corr: torch.Tensor, groups: torch.Tensor) -> float:
    """Mean correlation of the pairs of channels that share a group (what zipping maximises)."""
    same = groups[:, None] == groups[None, :]
    same.fill_diagonal_(False)
    return corr[same].mean().item() if same.any() else 0.0
