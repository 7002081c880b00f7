import torch

from moe.core.merge import EXPERT_KEYS, backbone_key_map, merge_teachers, recalibrate_batchnorm
from moe.core.models import TeacherCNN


def trained_looking_teachers(n=3, seed=0):
    """Teachers with distinct random weights and BatchNorm statistics, as if trained."""
    g = torch.Generator().manual_seed(seed)
    teachers = []
    for _ in range(n):
        t = TeacherCNN(5)
        with torch.no_grad():
            for k, v in t.state_dict().items():
                if v.dtype.is_floating_point:
                    v.copy_(torch.rand(v.shape, generator=g) * 0.2 + (0.9 if "running_var" in k else -0.1))
                else:
                    v.fill_(int(torch.randint(0, 100, (1,), generator=g)))
        teachers.append(t.eval())
    return teachers


def test_backbone_is_mean_and_experts_are_copies(task_a):
    teachers = trained_looking_teachers()
    moe = merge_teachers(task_a, teachers).state_dict()
    states = [t.state_dict() for t in teachers]
    mapping = backbone_key_map(states[0])
    assert len(mapping) == 32
    for t_key, m_key in mapping.items():
        stacked = torch.stack([s[t_key].double() for s in states])
        if moe[m_key].dtype.is_floating_point:
            torch.testing.assert_close(moe[m_key].double(), stacked.mean(0), rtol=0, atol=1e-6)
        else:  # num_batches_tracked: integer mean
            assert moe[m_key].item() == int(stacked.mean(0).item())
    for i, s in enumerate(states):
        for t_key, e_key in EXPERT_KEYS.items():
            assert torch.equal(moe[f"experts.{i}.{e_key}"], s[t_key])


def test_classifier_rows_come_from_teacher_heads_averaged_for_shared_classes(task_b):
    teachers = trained_looking_teachers()
    moe = merge_teachers(task_b, teachers)
    w = moe.classifier.weight.detach()
    hyena = task_b.class_index(34)  # teachers 1 and 2 (local index 0 in both: smallest id of each)
    expected = (teachers[0].head.weight[0] + teachers[1].head.weight[task_b.teachers[1].local_order.index(34)]) / 2
    torch.testing.assert_close(w[hyena, :512], expected.detach())
    assert torch.count_nonzero(w[:, 512:]) == 0


def test_moe_reproduces_each_teacher_when_routed_to_it(task_a):
    """Gate forced to expert i + teacher i's backbone + a classifier from its head = teacher i."""
    teachers = trained_looking_teachers()
    x = torch.randn(6, 3, 32, 32)
    for i, teacher in enumerate(teachers):
        moe = merge_teachers(task_a, teachers).eval()
        state = moe.state_dict()
        for t_key, m_key in backbone_key_map(teacher.state_dict()).items():
            state[m_key] = teacher.state_dict()[t_key].clone()
        head = teacher.head
        weight = torch.zeros_like(state["classifier.weight"])
        bias = torch.zeros_like(state["classifier.bias"])
        rows = [task_a.class_index(c) for c in task_a.teachers[i].local_order]
        weight[rows, :512] = head.weight.detach()
        bias[rows] = head.bias.detach()
        state["classifier.weight"], state["classifier.bias"] = weight, bias
        moe.load_state_dict(state)
        onehot = torch.zeros(1, 3)
        onehot[0, i] = 1
        with torch.no_grad():
            logits, _ = moe(x, onehot.expand(6, -1))
            expected = teacher(x)
        torch.testing.assert_close(logits[:, rows], expected, rtol=1e-4, atol=1e-4)


def test_batchnorm_recalibration_matches_activation_statistics(task_a):
    moe = merge_teachers(task_a, trained_looking_teachers())
    x = torch.randn(64, 3, 32, 32)
    recalibrate_batchnorm(moe.feature_extractor, x.split(16))
    bn = moe.feature_extractor[0].bn
    with torch.no_grad():
        pre = moe.feature_extractor[0].conv(x)
    torch.testing.assert_close(bn.running_mean, pre.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-4)


def test_teacher_count_must_match_experts(task_a):
    import pytest

    from moe.base.errors import MoEError
    with pytest.raises(MoEError, match="task A: got 2 teachers for 3 experts"):
        merge_teachers(task_a, trained_looking_teachers(2))
