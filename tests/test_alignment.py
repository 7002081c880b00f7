"""Aligned merge: permutations keep each teacher's function, match what is alike, and survive degenerate data;
the router fitted at merge time sends images to the experts that know their class."""

import pytest
import torch

from moe.base.data import Split, TaskData
from moe.base.errors import MoEError
from moe.base.tasks import parse_task
from moe.core import alignment
from moe.core.folding import calibration_batches, recalibrate_batchnorm
from moe.core.merge import (MergeSettings, merge_and_calibrate, merge_teachers,
                            training_subset)
from moe.core.models import MoEModel, TeacherCNN
from moe.core.router import CachedFeatures, cache_features, fit_router, owner_targets

from .test_merge import trained_looking_teachers

NORM = ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])


def images(n=12, size=16, seed=0):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def random_perms(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {point: torch.randperm(width, generator=g) for point, (_, width, _, _) in alignment.POINTS.items()}


def test_a_permuted_teacher_computes_the_same_logits():
    teacher = trained_looking_teachers(1)[0]
    permuted = alignment.permute_teacher(teacher, random_perms()).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(permuted(x), teacher(x), rtol=0, atol=1e-5)
    assert not torch.equal(permuted.conv1.conv.weight, teacher.conv1.conv.weight)  # the weights did move


def activations(teacher, x):
    found = {}
    hooks = [teacher.get_submodule(module).register_forward_hook(lambda _m, _i, out, p=point: found.__setitem__(p, out))
             for point, (module, _, _, _) in alignment.POINTS.items()]
    with torch.no_grad():
        teacher.eval()(x)
    for h in hooks:
        h.remove()
    return found


def test_a_shuffled_copy_is_found_and_undone():
    """Teacher 2 is teacher 1 with its channels shuffled: alignment undoes the shuffle, so aligned
    teacher 2 computes teacher 1's activations channel for channel at every point (a channel that is
    zero on every image may land anywhere: it carries nothing to match). A teacher aligned to itself
    keeps the identity."""
    torch.manual_seed(3)
    teacher = TeacherCNN(5).eval()
    shuffled = alignment.permute_teacher(teacher, random_perms(seed=1))
    found = alignment.align_teachers([teacher, shuffled], images(size=32), [NORM, NORM], rounds=3)
    for point, (_, width, _, _) in alignment.POINTS.items():
        assert torch.equal(found.perms[0][point], torch.arange(width)), point  # the reference stays as it is
        assert sorted(found.perms[1][point].tolist()) == list(range(width)), point  # a bijection
        assert found.correlation_after[point] > found.correlation_before[point] + 0.5, point  # dead channels count 0
    x = alignment.normalize(images(size=32), *NORM)
    want, got = activations(teacher, x), activations(alignment.permute_teacher(shuffled, found.perms[1]), x)
    for point in alignment.POINTS:
        torch.testing.assert_close(got[point], want[point], rtol=0, atol=1e-5)
    self_aligned = alignment.align_teachers([teacher, teacher], images(), [NORM, NORM], rounds=3)
    assert all(torch.equal(p, torch.arange(len(p))) for p in self_aligned.perms[1].values())


def test_three_teachers_rounds_give_bijections_and_raise_correlation():
    teachers = trained_looking_teachers(3)
    found = alignment.align_teachers(teachers, images(), [NORM] * 3, rounds=3)
    for perms in found.perms:
        for point, (_, width, _, _) in alignment.POINTS.items():
            assert sorted(perms[point].tolist()) == list(range(width))
    assert all(found.correlation_after[p] >= found.correlation_before[p] for p in alignment.POINTS)


def test_constant_channels_and_few_images_give_no_nan():
    teachers = trained_looking_teachers(2)
    with torch.no_grad():  # half of conv1's channels constant: weights zero, BatchNorm bias only
        teachers[0].conv1.conv.weight[:32] = 0
    found = alignment.align_teachers(teachers, images(n=2, size=8), [NORM, NORM], rounds=1)
    for perms in found.perms:
        assert all(sorted(p.tolist()) == list(range(len(p))) for p in perms.values())
    assert all(v == v for v in [*found.correlation_before.values(), *found.correlation_after.values()])
    with pytest.raises(MoEError, match="alignment_images"):
        alignment.align_teachers(teachers, images(n=1), [NORM, NORM], rounds=1)


def tiny_task():
    return parse_task({"name": "tiny", "image_size": 16, "classes": [{"id": i, "name": str(i)} for i in range(4)],
                       "teachers": [{"name": "a", "classes": [0, 1, 2], "train": "a.pth", "test": "a_t.pth"},
                                    {"name": "b", "classes": [2, 3], "train": "b.pth", "test": "b_t.pth"}]})


def test_owner_targets_split_a_shared_class_equally():
    target = owner_targets(tiny_task())
    torch.testing.assert_close(target, torch.tensor([[1, 0], [1, 0], [0.5, 0.5], [0, 1]]))


def test_a_fitted_router_sends_images_to_the_teacher_that_knows_them():
    """Pooled features are class clusters: the fitted gate picks an owning expert, a fresh one does not."""
    spec = tiny_task()
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 512, generator=g)

    def sample(n):
        labels = torch.arange(n) % 4
        return centres[labels] + 0.5 * torch.randn(n, 512, generator=g), labels

    pooled, labels = sample(400)
    model = MoEModel(4, 2)
    fresh = MoEModel(4, 2)
    fresh.load_state_dict(model.state_dict())
    fit_router(model, CachedFeatures(pooled, torch.zeros(400, 2, 512), labels), spec, steps=200, seed=0)
    test_pooled, test_labels = sample(200)
    owns = owner_targets(spec) > 0
    for m in (model, fresh):
        m.eval()

    def agreement(m):
        with torch.no_grad():
            gates, _ = m.gating_network(test_pooled)
        return owns[test_labels, gates.argmax(1)].float().mean().item()

    def owner_gate(m):  # mean gate weight on the owning expert, over images of the classes one teacher holds
        with torch.no_grad():
            gates, _ = m.gating_network(test_pooled)
        exclusive = test_labels != 2
        return (gates * owns[test_labels]).sum(1)[exclusive].mean().item(), gates

    assert agreement(model) == 1.0
    fitted_gate, gates = owner_gate(model)
    assert fitted_gate > 0.9 and owner_gate(fresh)[0] < 0.6
    assert (gates[test_labels == 2, 0] - 0.5).abs().max() < 0.25  # the shared class stays between both


def test_a_uniform_share_keeps_the_other_experts_in_the_gate():
    """merge.router_uniform_share 0.5 with two experts: the owner's gate near 0.75 (not 1), still the top one."""
    spec = tiny_task()
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 512, generator=g)
    labels = torch.arange(400) % 4
    pooled = centres[labels] + 0.5 * torch.randn(400, 512, generator=g)
    model = MoEModel(4, 2)
    fit_router(model, CachedFeatures(pooled, torch.zeros(400, 2, 512), labels), spec, steps=300, seed=0,
               uniform_share=0.5)
    model.eval()
    with torch.no_grad():
        gates, _ = model.gating_network(pooled)
    owner = torch.tensor([0, 0, -1, 1])[labels]
    exclusive = owner >= 0
    owner_gate = gates[exclusive].gather(1, owner[exclusive, None]).squeeze(1)
    assert (owner_gate - 0.75).abs().mean() < 0.05
    assert (gates[exclusive].argmax(1) == owner[exclusive]).all()


def test_the_feature_cache_in_bf16_is_the_fp32_cache_to_bf16_precision():
    """The merge's cache may run in bf16 (``merge`` reads ``precision``): same images, same features, to
    within bf16's rounding, and returned as fp32 for the fits."""
    torch.manual_seed(0)
    model = MoEModel(15, 3)
    data = task_a_sized_data()
    exact = cache_features(model, data.train, data.mean, data.std, "fp32")
    rounded = cache_features(model, data.train, data.mean, data.std, "bf16")
    assert rounded.pooled.dtype == rounded.experts.dtype == torch.float32
    assert torch.equal(rounded.labels, exact.labels)
    for a, b in ((rounded.pooled, exact.pooled), (rounded.experts, exact.experts)):
        assert a.shape == b.shape and torch.isfinite(a).all()
        assert (a - b).norm() / b.norm() < 0.05
        assert not torch.equal(a, b)  # bf16 did run


def task_a_sized_data() -> TaskData:
    """40 random 32x32 training images over Task A's 15 classes, no validation split."""
    g = torch.Generator().manual_seed(0)
    return TaskData(Split(torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=g),
                          torch.arange(40) % 15), Split(torch.zeros(0, 3, 32, 32, dtype=torch.uint8),
                                                        torch.zeros(0, dtype=torch.long)), *NORM)


def small_merge_settings(**changes) -> MergeSettings:
    """Merge settings sized for a test: a handful of images and steps."""
    return MergeSettings(**{"alignment": "none", "alignment_images": 10, "alignment_rounds": 3,
                            "bn_recalibration_batches": 2, "batch_size": 8, "classifier_from_teachers": True,
                            "router_init": "fresh", "router_fit_steps": 10, "classifier_fit_steps": 0,
                            "gate_noise_std": 0.1, "seed": 5, "precision": "fp32",
                            "router_uniform_share": 0.0, "min_odds_ratio": 0.0, "fit_images": 0,
                            **changes})


def test_alignment_none_and_a_fresh_router_are_the_plain_merge(task_a):
    teachers = trained_looking_teachers()
    data = task_a_sized_data()
    settings = small_merge_settings()
    model, report = merge_and_calibrate(task_a, teachers, [NORM] * 3, data, settings)
    torch.manual_seed(5)
    expected = merge_teachers(task_a, teachers, 0.1, True)
    assert recalibrate_batchnorm(expected.feature_extractor,
                                 calibration_batches(data.train.images, data.mean, data.std, 5, 2, 8, torch.device("cpu"))) == report.bn_images == 16
    for key, value in expected.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert report.correlation_after == {} and report.router_loss is None

    aligned, aligned_report = merge_and_calibrate(
        task_a, teachers, [NORM] * 3, data, small_merge_settings(alignment="permute", router_init="fitted",
                                                                 classifier_fit_steps=5))
    assert aligned_report.alignment_images == 10 and set(aligned_report.correlation_after) == set(alignment.POINTS)
    assert aligned_report.router_loss is not None and aligned_report.classifier_loss is not None
    assert all(torch.isfinite(v).all() for v in aligned.state_dict().values() if v.is_floating_point())
    assert aligned_report.fit_images == 40  # 0: the fits read every training image


def test_the_fits_read_a_seeded_subset_of_training_images(task_a):
    """merge.fit_images: the router and classifier fits read that many training images, the same ones for
    the same seed (the first of them are the alignment's images), and all of them for 0 or more than there are."""
    data = task_a_sized_data()
    subset = training_subset(data, 12, seed=5)
    assert len(subset) == 12 and torch.equal(training_subset(data, 12, seed=5).images, subset.images)
    assert torch.equal(training_subset(data, 10, seed=5).images, subset.images[:10])
    assert not torch.equal(training_subset(data, 12, seed=6).images, subset.images)
    rows = {bytes(img.numpy().tobytes()): int(label) for img, label in zip(data.train.images, data.train.labels)}
    assert all(rows[bytes(img.numpy().tobytes())] == int(label) for img, label in zip(subset.images, subset.labels))
    assert training_subset(data, 0, seed=5) is data.train
    everything = training_subset(data, 99, seed=5)
    assert len(everything) == 40 and sorted(everything.labels.tolist()) == sorted(data.train.labels.tolist())

    _, report = merge_and_calibrate(task_a, trained_looking_teachers(), [NORM] * 3, data,
                                    small_merge_settings(router_init="fitted", classifier_fit_steps=5, fit_images=12))
    assert report.fit_images == 12 and report.router_loss is not None and report.classifier_loss is not None
