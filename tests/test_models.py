"""State-dict layout must equal the released files' (formats reference) so they load unchanged."""

import pytest
import torch

from moe.core.models import MoEModel, TeacherCNN
from moe.core.runtime import memory_format_for

BACKBONE = [  # (teacher key, MoE key, shape)
    ("conv1.conv.weight", "feature_extractor.0.conv.weight", (64, 3, 3, 3)),
    *[(f"conv1.bn.{s}", f"feature_extractor.0.bn.{s}", (64,)) for s in ("weight", "bias", "running_mean", "running_var")],
    ("conv1.bn.num_batches_tracked", "feature_extractor.0.bn.num_batches_tracked", ()),
    ("residual1.main_path.0.conv.weight", "feature_extractor.1.main_path.0.conv.weight", (128, 64, 3, 3)),
    *[(f"residual1.main_path.0.bn.{s}", f"feature_extractor.1.main_path.0.bn.{s}", (128,))
      for s in ("weight", "bias", "running_mean", "running_var")],
    ("residual1.main_path.0.bn.num_batches_tracked", "feature_extractor.1.main_path.0.bn.num_batches_tracked", ()),
    ("residual1.shortcut.weight", "feature_extractor.1.shortcut.weight", (128, 64, 1, 1)),
    ("residual2.main_path.0.conv.weight", "feature_extractor.3.main_path.0.conv.weight", (256, 128, 3, 3)),
    ("residual2.main_path.1.conv.weight", "feature_extractor.3.main_path.1.conv.weight", (256, 256, 3, 3)),
    *[(f"residual2.main_path.{i}.bn.{s}", f"feature_extractor.3.main_path.{i}.bn.{s}", (256,))
      for i in (0, 1) for s in ("weight", "bias", "running_mean", "running_var")],
    *[(f"residual2.main_path.{i}.bn.num_batches_tracked", f"feature_extractor.3.main_path.{i}.bn.num_batches_tracked", ())
      for i in (0, 1)],
    ("residual2.shortcut.weight", "feature_extractor.3.shortcut.weight", (256, 128, 1, 1)),
    ("conv2.conv.weight", "feature_extractor.5.conv.weight", (512, 256, 1, 1)),
    *[(f"conv2.bn.{s}", f"feature_extractor.5.bn.{s}", (512,)) for s in ("weight", "bias", "running_mean", "running_var")],
    ("conv2.bn.num_batches_tracked", "feature_extractor.5.bn.num_batches_tracked", ()),
]
TEACHER_HEAD = {
    "conv3.0.depthwise.weight": (512, 1, 3, 3), "conv3.0.pointwise.weight": (512, 512, 1, 1),
    **{f"conv3.0.bn.{s}": (512,) for s in ("weight", "bias", "running_mean", "running_var")},
    "conv3.0.bn.num_batches_tracked": (), "classifier.3.weight": (5, 512), "classifier.3.bias": (5,),
}


def expected_moe(num_classes=15, experts=3):
    shapes = {m: s for _, m, s in BACKBONE}
    for i in range(experts):
        shapes.update({f"experts.{i}.0.weight": (512, 1, 3, 3), f"experts.{i}.1.weight": (512, 512, 1, 1),
                       **{f"experts.{i}.2.{s}": (512,) for s in ("weight", "bias", "running_mean", "running_var")},
                       f"experts.{i}.2.num_batches_tracked": ()})
    for path, idx in (("feature_net", (0, 1, 4, 5)), ("gate_net", (0, 1))):
        for j in idx:
            if j in (0, 4):
                shapes[f"gating_network.{path}.{j}.weight"] = (256, 512 if j == 0 else 256)
                shapes[f"gating_network.{path}.{j}.bias"] = (256,)
            else:
                shapes.update({f"gating_network.{path}.{j}.{s}": (256,) for s in ("weight", "bias", "running_mean", "running_var")})
                shapes[f"gating_network.{path}.{j}.num_batches_tracked"] = ()
    shapes["gating_network.gate_net.4.weight"] = (experts, 256)
    shapes["gating_network.gate_net.4.bias"] = (experts,)
    shapes["classifier.weight"] = (num_classes, 768)
    shapes["classifier.bias"] = (num_classes,)
    return shapes


def test_teacher_state_dict_matches_formats_table():
    expected = {t: s for t, _, s in BACKBONE} | TEACHER_HEAD
    got = {k: tuple(v.shape) for k, v in TeacherCNN(5).state_dict().items()}
    assert got == expected
    assert len(got) == 41


def test_moe_state_dict_matches_formats_table():
    got = {k: tuple(v.shape) for k, v in MoEModel(15, 3).state_dict().items()}
    assert got == expected_moe(15, 3)
    assert len(got) == 78
    assert {k: tuple(v.shape) for k, v in MoEModel(12, 3).state_dict().items()} == expected_moe(12, 3)


def test_moe_forward_shapes_and_gates_sum_to_one():
    model = MoEModel(12, 3).eval()
    logits, gates = model(torch.randn(4, 3, 64, 64))
    assert logits.shape == (4, 12) and gates.shape == (4, 3)
    torch.testing.assert_close(gates.sum(1), torch.ones(4))


@pytest.mark.parametrize("size", [32, 64])
def test_memory_layouts_give_the_same_logits(size):
    # the layout is chosen per image size for speed (moe.core.runtime.memory_format_for); it must not change results
    torch.manual_seed(0)
    model = MoEModel(15, 3).eval()
    x = torch.randn(8, 3, size, size)
    with torch.no_grad():
        plain, plain_gates = model.to(memory_format=torch.contiguous_format)(x)
        last, last_gates = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(last, plain, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(last_gates, plain_gates, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("capability, training_layout_at_32", [("AVX2", torch.contiguous_format),
                                                               ("AVX512", torch.channels_last)])
def test_training_layout_follows_the_cpu_kernels(monkeypatch, capability, training_layout_at_32):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    cpu = torch.device("cpu")
    assert memory_format_for(32, cpu) == training_layout_at_32
    assert memory_format_for(64, cpu) == torch.channels_last
    assert memory_format_for(32, cpu, training=False) == torch.channels_last


def _with_trained_looking_batchnorm(model):
    """BatchNorms with statistics and affine weights far from their initial 0/1, so folding them matters."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.5)
    torch.nn.init.normal_(model.classifier.weight if isinstance(model, MoEModel) else model.head.weight, 0, 0.5)
    return model.eval()


@pytest.mark.parametrize("make, folds", [(lambda: MoEModel(15, 3), 11), (lambda: TeacherCNN(5), 6)])
def test_folded_batchnorm_gives_the_same_predictions_and_leaves_the_model_alone(make, folds):
    from moe.core.folding import fold_batchnorm
    from moe.core.inference import predict

    torch.manual_seed(0)
    model = _with_trained_looking_batchnorm(make())
    keys = list(model.state_dict())
    folded, count = fold_batchnorm(model)
    assert count == folds  # every BatchNorm of the architecture
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert list(model.state_dict()) == keys  # the model itself (what is saved) keeps its BatchNorms
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        plain, fast = model(x), folded(x)
    plain, fast = (plain, fast) if isinstance(plain, tuple) else ((plain,), (fast,))
    assert plain[0].abs().max() > 1  # logits large enough for the tolerance to mean something
    for a, b in zip(plain, fast):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    by_predict = predict(model, images, [0.5] * 3, [0.25] * 3)[0]  # the folded path
    with torch.no_grad():
        by_hand = model(((images.float() / 255 - 0.5) / 0.25))
    torch.testing.assert_close(by_predict, by_hand[0] if isinstance(by_hand, tuple) else by_hand, rtol=1e-4, atol=1e-4)


def test_bit_mask_dropout_drops_half_scales_by_two_and_passes_gradients_through_the_same_mask():
    from moe.core.models import Dropout

    torch.manual_seed(0)
    drop = Dropout(0.5).train()
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = (torch.rand(64, 512, 8, 8) + 1).contiguous(memory_format=fmt).requires_grad_()
        y = drop(x)
        kept = y != 0
        assert abs(kept.float().mean().item() - 0.5) < 0.002  # 2M draws: 0.002 is > 5 standard deviations
        torch.testing.assert_close(y[kept], 2 * x[kept])
        y.sum().backward()
        torch.testing.assert_close(x.grad, 2.0 * kept)
        assert y.is_contiguous(memory_format=fmt)
    per_position = (drop(torch.ones(2000, 64)) != 0).float().mean(0)  # no bit position of a word is biased
    assert per_position.min() > 0.44 and per_position.max() < 0.56
    x = torch.randn(4, 8)
    assert torch.equal(drop.eval()(x), x)  # eval: identity, so fast and reference logits are the same
    torch.manual_seed(0)
    other = Dropout(0.2).train()(torch.ones(4000))  # any other rate is nn.Dropout's own
    assert abs((other == 0).float().mean().item() - 0.2) < 0.03
