"""State-dict layout must equal the released files' (formats reference) so they load unchanged."""

import pytest
import torch

from moe.models import MoEModel, TeacherCNN
from moe.runtime import memory_format_for

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
    # the layout is chosen per image size for speed (moe.runtime.memory_format_for); it must not change results
    torch.manual_seed(0)
    model = MoEModel(15, 3).eval()
    x = torch.randn(8, 3, size, size)
    with torch.no_grad():
        plain, plain_gates = model.to(memory_format=torch.contiguous_format)(x)
        last, last_gates = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(last, plain, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(last_gates, plain_gates, rtol=1e-4, atol=1e-5)
    assert memory_format_for(32, torch.device("cpu")) == torch.contiguous_format
    assert memory_format_for(64, torch.device("cpu")) == torch.channels_last
