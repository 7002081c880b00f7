"""Zipped merge (merge.alignment: zip): groups follow correlation, the merge/unmerge algebra reduces to
the permuted mean for a permutation, copies of one teacher zip back into that teacher, and degenerate
activations give finite weights."""

import torch
import torch.nn.functional as F

from moe.core import alignment, zipping
from moe.core.merge import backbone_key_map, merge_and_calibrate, merge_teachers

from .test_alignment import NORM, images, random_perms, small_merge_settings, task_a_sized_data
from .test_merge import trained_looking_teachers


def correlation_of(features: torch.Tensor) -> torch.Tensor:
    return torch.corrcoef(features.T.double())


def test_groups_join_the_same_feature_across_teachers_and_within_one():
    """Teacher t's channel j is feature perm_t[j]; teacher 0 also computes feature 0 twice (its
    channels 0 and 1), and lacks feature 1. Zipping groups equal features, whoever holds them."""
    g = torch.Generator().manual_seed(0)
    width, num = 6, 3
    features = torch.randn(4000, width, generator=g)  # independent features: correlations near 0
    perms = [torch.randperm(width, generator=g) for _ in range(num)]
    perms[0] = torch.tensor([0, 0, 2, 3, 4, 5])
    columns = torch.cat([features[:, p] for p in perms], 1)
    groups = zipping.zip_groups(correlation_of(columns), num)
    assert sorted(groups.unique().tolist()) == list(range(width))  # exactly c groups, none empty
    which = {(t, j): int(groups[t * width + j]) for t in range(num) for j in range(width)}
    for feature in range(2, width):  # features every teacher holds once: one channel of each, together
        members = {(t, j) for t in range(num) for j in range(width) if perms[t][j] == feature}
        assert len({which[m] for m in members}) == 1
        assert sum(int(g == which[next(iter(members))]) for g in groups) == num
    assert which[(0, 0)] == which[(0, 1)]  # one teacher's duplicate channels join its peers' copies


def test_merge_matrices_are_averages_and_unmerges_are_assignments():
    groups = torch.tensor([0, 0, 1, 2,   1, 2, 0, 3,   3, 3, 1, 2])  # 3 teachers, 4 channels
    merge, unmerge = zipping.matrices_from_groups(groups, 3)
    full_merge = torch.cat(merge, 1)  # c x (T c)
    torch.testing.assert_close(full_merge.sum(1), torch.ones(4, dtype=torch.float64))
    for u in unmerge:
        assert torch.equal(u.sum(1), torch.ones(4, dtype=torch.float64))  # each channel reads one merged channel
    assert full_merge[0].tolist() == [1 / 3, 1 / 3, 0, 0, 0, 0, 1 / 3, 0, 0, 0, 0, 0]


def test_a_permutation_as_groups_is_the_permuted_teachers_mean():
    teachers = trained_looking_teachers(3)
    perms = [random_perms(seed=s) for s in range(3)]
    points = list(alignment.POINTS)
    merge, unmerge = {}, {}
    for point in points:
        merge[point], unmerge[point] = zipping.matrices_from_perms([p[point] for p in perms])
    zipped = zipping.zipped_backbone([t.state_dict() for t in teachers], merge, unmerge)
    permuted = [alignment.permute_teacher(t, p).state_dict() for t, p in zip(teachers, perms)]
    assert set(zipped) == set(backbone_key_map(permuted[0]))
    for key, value in zipped.items():
        if value.is_floating_point():
            want = torch.stack([s[key].double() for s in permuted]).mean(0)
            torch.testing.assert_close(value.double(), want, rtol=0, atol=1e-6, msg=key)


def test_copies_of_one_teacher_zip_back_into_that_teacher():
    """Two copies, one with its channels shuffled: every live channel finds its copy, so the zipped
    backbone computes the teacher's features, and the MoE built on it the teacher's expert features."""
    torch.manual_seed(3)
    teacher = trained_looking_teachers(1)[0]
    shuffled = alignment.permute_teacher(teacher, random_perms(seed=1))
    x = images(n=24, size=32)
    backbone, found = zipping.zip_teachers([teacher, shuffled], x, [NORM, NORM], rounds=3)
    assert all(found.correlation_after[p] > found.correlation_before[p] for p in zipping.ZIP_POINTS)
    model = merge_teachers(_two_teacher_task(), [teacher, alignment.permute_teacher(shuffled, found.perms[1])],
                           backbone=backbone).eval()
    inputs = alignment.normalize(x, *NORM)
    with torch.no_grad():
        h = F.max_pool2d(teacher.residual1(teacher.conv1(inputs)), 2)
        want = teacher.conv3[0](teacher.conv2(F.max_pool2d(teacher.residual2(h), 2)))
        for expert in model.experts:  # expert 2 is the shuffled copy's, put back in the merged order
            got = expert[:4](model.feature_extractor(inputs))
            # live channels exactly; channels dead on these images join one another and may leak a little
            assert (got - want).abs().max() < 1e-2 * want.abs().max()


def _two_teacher_task():
    from moe.base.tasks import parse_task
    return parse_task({"name": "two", "image_size": 32, "classes": [{"id": i, "name": str(i)} for i in range(6)],
                       "teachers": [{"name": "a", "classes": [0, 1, 2, 3, 4], "train": "a.pth", "test": "a_t.pth"},
                                    {"name": "b", "classes": [1, 2, 3, 4, 5], "train": "b.pth", "test": "b_t.pth"}]})


def test_zip_merge_with_constant_channels_and_two_images_is_finite(task_a):
    teachers = trained_looking_teachers(3)
    with torch.no_grad():  # half of conv1's channels constant: weights zero, BatchNorm bias only
        teachers[0].conv1.conv.weight[:32] = 0
    data = task_a_sized_data()
    settings = small_merge_settings(alignment="zip", alignment_images=2, alignment_rounds=1, router_init="fitted",
                                    router_fit_steps=5, classifier_fit_steps=5)
    model, report = merge_and_calibrate(task_a, teachers, [NORM] * 3, data, settings)
    assert report.alignment_images == 2 and set(report.correlation_after) == set(alignment.POINTS)
    assert all(v == v for v in [*report.correlation_before.values(), *report.correlation_after.values()])
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
