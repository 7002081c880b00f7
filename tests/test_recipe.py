"""The training recipe's parts, each checked by its numbers: label smoothing, weight decay groups,
the weights' moving average, mirror-image test-time augmentation, and the distillation teachers'
folded BatchNorm."""

import math

import pytest
import torch

from moe.base.data import Split
from moe.base.errors import MoEError
from moe.core.batches import downscale, scaled_size
from moe.core.folding import fold_batchnorm
from moe.core.inference import predict
from moe.core.losses import moe_loss
from moe.core.models import MoEModel, TeacherCNN
from moe.core.objectives import CrossEntropy, MoEObjective
from moe.core.training import TrainConfig, WeightAverage, fit, parameter_groups
from moe.results.evaluation import predict_with_experts


def test_label_smoothing_by_hand_in_both_objectives():
    logits, labels, s = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0]), 0.1
    log_p = [2 - math.log(math.exp(2) + 2), -math.log(math.exp(2) + 2), -math.log(math.exp(2) + 2)]
    target = [1 - s + s / 3, s / 3, s / 3]
    expected = -sum(q * lp for q, lp in zip(target, log_p))  # 0.3276...
    gates = torch.full((1, 3), 1 / 3)
    assert moe_loss(logits, labels, gates, 0.0, 0.0, label_smoothing=s).task.item() == pytest.approx(expected, abs=1e-6)
    assert moe_loss(logits, labels, gates, 0.0, 0.0).task.item() == pytest.approx(-log_p[0], abs=1e-6)

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return logits
    assert CrossEntropy(s).step(Fixed(), None, labels).loss.item() == pytest.approx(expected, abs=1e-6)


def test_matrices_scope_decays_conv_and_linear_weights_only():
    model = TeacherCNN(5)
    groups = parameter_groups(model, 0.1, 0.5, "matrices")
    everything = {id(p) for p in model.parameters()}
    assert {id(p) for g in groups for p in g["params"]} == everything  # each parameter in exactly one group
    assert sum(len(g["params"]) for g in groups) == len(everything)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # a step of pure weight decay: AdamW multiplies by 1 - lr * wd
    torch.optim.AdamW(groups, lr=0.1).step()
    for name, p in model.named_parameters():
        factor = 1 - 0.1 * 0.5 if p.ndim >= 2 else 1.0
        assert torch.allclose(p, before[name] * factor, atol=1e-7), name
    assert len(parameter_groups(model, 0.1, 0.5, "all")) == 1


@pytest.mark.parametrize("scope", ["all", "matrices"])
def test_vector_lr_scale_moves_batchnorm_parameters_and_biases_that_many_times_further(scope):
    model = TeacherCNN(5)
    groups = parameter_groups(model, 0.01, 0.0, scope, vector_lr_scale=10.0)
    assert [g["lr"] for g in groups] == [0.01, pytest.approx(0.1)]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # AdamW's first step is lr * g / (|g| + eps): lr itself for g = 1
    torch.optim.AdamW(groups, lr=123.0).step()  # each group's own rate, not the default
    for name, p in model.named_parameters():
        moved = (before[name] - p.detach()).abs().max().item()
        assert moved == pytest.approx(0.1 if p.ndim < 2 else 0.01, rel=1e-5), name


def test_weight_average_by_hand_and_its_ramp():
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.fill_(3.0)
        model[1].num_batches_tracked.fill_(7)
    average.update(model)  # first update: decay min(0.9, 2/11)
    d = 2 / 11
    assert torch.allclose(average.model[0].weight, torch.full((1, 2), d * 1.0 + (1 - d) * 3.0))
    assert average.model[1].num_batches_tracked.item() == 7  # counters are copied, not averaged
    for _ in range(200):
        average.update(model)
    assert torch.allclose(average.model[0].weight, torch.full((1, 2), 3.0), atol=1e-6)
    assert average.updates == 201 and not average.model[0].weight.requires_grad


def _tiny(n_train=24, n_val=9):
    g = torch.Generator().manual_seed(0)
    make = lambda n: Split(torch.randint(0, 255, (n, 3, 16, 16), dtype=torch.uint8, generator=g), torch.arange(n) % 3)
    return make(n_train), make(n_val)


def test_training_with_an_average_selects_and_returns_the_average():
    train_set, val_set = _tiny()
    runs = {}
    for decay in (0.0, 0.9):
        torch.manual_seed(0)
        seen = {}
        result = fit(MoEModel(3, 3), MoEObjective(), train_set, val_set,
                     TrainConfig(num_epochs=2, batch_size=8, patience=99, ema_decay=decay, lr=0.01), [0.5] * 3, [0.25] * 3,
                     on_epoch=lambda r, m: seen.update({r["epoch"]: {k: v.clone() for k, v in m.state_dict().items()}}))
        runs[decay] = result, seen
    (plain, plain_seen), (averaged, averaged_seen) = runs[0.0], runs[0.9]
    # the average does not change how the model trains, only what is validated and kept
    assert [r["train_loss"] for r in plain.history] == [r["train_loss"] for r in averaged.history]
    epoch = averaged.best_epoch
    assert epoch in (1, 2)
    assert all(torch.equal(averaged.best_state[k], v) for k, v in averaged_seen[epoch].items())
    assert any(not torch.allclose(plain_seen[epoch][k], v) for k, v in averaged.best_state.items()
               if v.is_floating_point())
    model = MoEModel(3, 3)
    model.load_state_dict(averaged.best_state)
    model.set_temperature(averaged.best_record["temperature"])
    logits, _ = predict(model, val_set.images, [0.5] * 3, [0.25] * 3)
    assert 100.0 * (logits.argmax(1) == val_set.labels).float().mean().item() == pytest.approx(averaged.best_val_accuracy)


class BatchesSeen(CrossEntropy):
    """Plain classification that records, per epoch, which training images were mirrored and the image
    sizes the batches had."""

    def __init__(self):
        self.epoch, self.mirrored, self.sizes = 0, {}, {}

    def begin_epoch(self, model, epoch, num_epochs):
        self.epoch = epoch

    def step(self, model, x, y, where=None):
        images, mirrored = where
        self.mirrored.setdefault(self.epoch, {}).update(zip(images.tolist(), mirrored.tolist()))
        self.sizes.setdefault(self.epoch, set()).add(tuple(x.shape[-2:]))
        return super().step(model, x, y)


def test_alternating_flips_show_every_image_both_ways_over_two_epochs():
    train_set, val_set = _tiny(n_train=40)
    seen = {}
    for flips in ("random", "alternating"):
        objective = BatchesSeen()
        fit(TeacherCNN(3), objective, train_set, val_set,
            TrainConfig(num_epochs=3, batch_size=8, patience=99, flips=flips), [0.5] * 3, [0.25] * 3)
        seen[flips] = [[objective.mirrored[e][i] for i in range(40)] for e in range(3)]
    first, second, third = seen["alternating"]
    assert all(a != b for a, b in zip(first, second)) and first == third
    assert 10 <= sum(first) <= 30  # a random half to start with (seeded): 40 images, expected 20
    random_first, random_second, _ = seen["random"]
    assert sum(a == b for a, b in zip(random_first, random_second)) >= 10  # independent coins repeat about half


@pytest.mark.parametrize("make", [lambda: TeacherCNN(4), lambda: MoEModel(4, 2)])
def test_flip_averages_the_image_and_its_mirror(make):
    torch.manual_seed(1)
    model = make()
    images = torch.randint(0, 255, (6, 3, 32, 32), dtype=torch.uint8)
    plain, gates = predict(model, images, [0.5] * 3, [0.25] * 3)
    mirrored, mirrored_gates = predict(model, images.flip(3), [0.5] * 3, [0.25] * 3)
    both, both_gates = predict(model, images, [0.5] * 3, [0.25] * 3, flip=True)
    assert torch.allclose(both, (plain + mirrored) / 2, atol=1e-5)
    assert not torch.allclose(both, plain, rtol=1e-2, atol=0)  # the mirror image really was run
    if gates is not None:
        assert torch.allclose(both_gates, (gates + mirrored_gates) / 2, atol=1e-6)
        experts = predict_with_experts(model, images, [0.5] * 3, [0.25] * 3, flip=True)
        assert torch.allclose(experts["logits"], both, atol=1e-5)
        assert torch.allclose(experts["gates"], both_gates, atol=1e-6)


def test_shifted_views_are_the_image_moved_both_ways_with_mirrored_edges():
    torch.manual_seed(1)
    model = MoEModel(4, 2)
    images = torch.randint(0, 255, (5, 3, 16, 16), dtype=torch.uint8)

    def moved(x, by):  # by hand: pixel (i, j) of the view is pixel (i + by, j + by) of the image, edges reflected
        reflect = lambda k: -k if k < 0 else 2 * 15 - k if k > 15 else k
        rows = torch.tensor([reflect(i + by) for i in range(16)])
        return x[:, :, rows][:, :, :, rows]

    one = lambda x: predict(model, x, [0.5] * 3, [0.25] * 3)[0]
    by_hand = [one(v) for x in (images, images.flip(3)) for v in (x, moved(x, -2), moved(x, 2))]
    six, _ = predict(model, images, [0.5] * 3, [0.25] * 3, flip=True, shift=2)
    assert torch.allclose(six, sum(by_hand) / 6, atol=1e-5)
    three, _ = predict(model, images, [0.5] * 3, [0.25] * 3, shift=2)  # without the mirror images
    assert torch.allclose(three, sum(by_hand[:3]) / 3, atol=1e-5)
    assert not torch.allclose(six, predict(model, images, [0.5] * 3, [0.25] * 3, flip=True)[0], rtol=1e-2, atol=0)
    experts = predict_with_experts(model, images, [0.5] * 3, [0.25] * 3, flip=True, shift=2)
    assert torch.allclose(experts["logits"], six, atol=1e-5)
    with pytest.raises(MoEError, match="tta_shift: 4 pixels is too far for 4x4 images"):
        predict(model, images[:, :, :4, :4], [0.5] * 3, [0.25] * 3, shift=4)


def test_distillation_teachers_run_folded_with_the_same_logits():
    from moe.core.methods import objective_for
    from moe.base.tasks import parse_task
    from moe.base.params import SCHEMA
    from moe.base.formats import save_torch

    spec = parse_task({"name": "t", "image_size": 16, "classes": [{"id": i, "name": str(i)} for i in range(4)],
                       "teachers": [{"name": "a", "classes": [0, 1], "train": "a.pth", "test": "a_te.pth"},
                                    {"name": "b", "classes": [2, 3], "train": "b.pth", "test": "b_te.pth"}]})
    torch.manual_seed(2)
    teachers = [TeacherCNN(2), TeacherCNN(2)]
    for t in teachers:  # non-trivial running statistics, so that folding changes the weights
        t.train()
        t(torch.randn(16, 3, 16, 16) * 2 + 1)
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        files = [Path(d) / f"teacher_{i}.pth" for i in range(2)]
        for t, f in zip(teachers, files):
            save_torch(t.state_dict(), f)
        p = {name: param.default for name, param in SCHEMA.items()}
        objective = objective_for("distill", p, spec, files, [0.5] * 3, [0.25] * 3, torch.device("cpu"))
    x = torch.randn(5, 3, 16, 16)
    for folded, original in zip(objective.teachers, teachers):
        assert fold_batchnorm(folded)[1] == 0  # nothing left to fold: it was
        assert torch.allclose(folded(x), original.eval()(x), atol=1e-5)


@pytest.mark.parametrize("name, moe_epochs, low_res, teacher_low_res",
                         [("real_data.args", 16, 0, 0), ("real_data_long.args", 32, 12, 6)])
def test_the_shipped_real_data_schedules_are_valid_parameters(name, moe_epochs, low_res, teacher_low_res):
    import shlex

    import yaml

    from moe.base.params import load_params

    from .conftest import ROOT

    lines = [line for line in (ROOT / "schedules" / name).read_text().splitlines() if not line.startswith("#")]
    words = shlex.split(" ".join(lines))
    assert words[::2] == ["-S"] * (len(words) // 2)
    changes = dict(w.split("=", 1) for w in words[1::2])
    p = load_params(ROOT / "params.yaml", {k: yaml.safe_load(v) for k, v in changes.items()})  # as `dvc exp run -S` reads them
    assert p["ema_decay"] == 0.998 and p["tta_flip"] is True and p["weight_decay_scope"] == "matrices"
    assert p["tta_shift"] == 1 and p["vector_lr_scale"] == 10
    assert p["num_epochs"] == moe_epochs and p["teacher.epochs"] == 12 and p["teacher.label_smoothing"] == 0.1
    assert p["low_res_epochs"] == low_res and p["teacher.low_res_epochs"] == teacher_low_res


def test_low_res_epochs_train_on_scaled_down_crops_then_full_size():
    """low_res_epochs: the first epochs see each augmented crop scaled to low_res_scale of its side (the
    network takes any size), later ones and validation the full size."""
    train_set, val_set = _tiny(n_train=40)
    objective = BatchesSeen()
    result = fit(TeacherCNN(3), objective, train_set, val_set,
                 TrainConfig(num_epochs=3, batch_size=8, patience=99, low_res_epochs=2, low_res_scale=0.5),
                 [0.5] * 3, [0.25] * 3)
    assert objective.sizes == {0: {(8, 8)}, 1: {(8, 8)}, 2: {(16, 16)}}  # 16x16 images
    assert len(result.history) == 3 and all(math.isfinite(r["train_loss"]) for r in result.history)
    assert [r["image_size"] for r in result.history] == [8, 8, 16]
    # a weighted mean of neighbouring pixels: a flat image stays flat, a random one keeps its mean
    flat = torch.full((2, 3, 32, 32), 0.7)
    assert downscale(flat, 16).shape == (2, 3, 16, 16) and torch.allclose(downscale(flat, 16), flat[..., :16, :16])
    noise = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    small = downscale(noise, 16)
    assert abs(small.mean() - noise.mean()) < 0.01 and small.std() < 0.6 * noise.std()  # averaged, not sampled
    assert downscale(noise, 32) is noise
    assert scaled_size(32, 0.5) == 16 and scaled_size(64, 0.5) == 32 and scaled_size(64, 0.75) == 48
    with pytest.raises(MoEError, match="low_res_scale"):
        scaled_size(32, 0.1)


def test_after_a_small_epoch_validation_sees_full_size_statistics_and_training_goes_on_unchanged():
    """After an epoch on smaller images the model is validated (and selected) as a copy whose BatchNorm
    statistics are re-estimated on full-size training images; the training itself is the same to the bit."""
    train_set, val_set = _tiny(n_train=40)
    mean, std = [0.5] * 3, [0.25] * 3
    runs = {}
    for batches in (0, 5):  # 5 batches of 8: all 40 training images
        torch.manual_seed(0)
        seen = {}
        result = fit(TeacherCNN(3), CrossEntropy(0.0), train_set, val_set,
                     TrainConfig(num_epochs=2, batch_size=8, patience=99, low_res_epochs=1, low_res_scale=0.5,
                                 bn_recalibration_batches=batches), mean, std,
                     on_epoch=lambda r, m: seen.update({r["epoch"]: m}))
        runs[batches] = result, seen
    (plain, plain_seen), (rescaled, rescaled_seen) = runs[0], runs[5]
    assert [r["train_loss"] for r in plain.history] == [r["train_loss"] for r in rescaled.history]
    assert plain.history[1] == rescaled.history[1]  # the full-size epoch: validated as it trained
    assert plain.history[0]["val_loss"] != rescaled.history[0]["val_loss"]
    small = rescaled_seen[1]
    x = (train_set.images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = small.conv1.conv(x).mean(dim=(0, 2, 3))  # the first BatchNorm's input, at 16x16
    torch.testing.assert_close(small.conv1.bn.running_mean, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(plain_seen[1].conv1.bn.running_mean, expected, rtol=1e-2, atol=1e-2)
    logits, _ = predict(small, val_set.images, mean, std)
    assert torch.nn.functional.cross_entropy(logits, val_set.labels).item() == pytest.approx(
        rescaled.history[0]["val_loss"], abs=1e-5)


def test_low_res_off_is_the_plain_loop():
    """low_res_epochs 0 (the default) changes nothing: the same losses to the bit as without the setting."""
    train_set, val_set = _tiny(n_train=40)
    runs = []
    for cfg in (TrainConfig(num_epochs=2, batch_size=8, patience=99),
                TrainConfig(num_epochs=2, batch_size=8, patience=99, low_res_epochs=0, low_res_scale=0.25)):
        torch.manual_seed(0)
        runs.append(fit(TeacherCNN(3), CrossEntropy(0.0), train_set, val_set, cfg, [0.5] * 3, [0.25] * 3))
    assert [r["train_loss"] for r in runs[0].history] == [r["train_loss"] for r in runs[1].history]
    assert runs[0].history == runs[1].history and "image_size" not in runs[1].history[0]
