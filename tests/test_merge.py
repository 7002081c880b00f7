import pytest
import torch

from moe.core.folding import recalibrate_batchnorm
from moe.core.merge import EXPERT_KEYS, backbone_key_map, merge_teachers
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


def test_batchnorm_recalibration_by_hand_leaves_dropout_off_and_draws_no_random_number():
    """Only the BatchNorms measure: with dropout off the statistics are the inputs' own (the mean of the
    batches' means and unbiased variances), the random stream is untouched and every mode comes back."""
    module = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(2, momentum=0.3)).eval()
    batches = [torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([[5.0, 2.0], [7.0, 2.0]])]
    before = torch.get_rng_state()
    assert recalibrate_batchnorm(module, batches) == 4
    assert torch.equal(torch.get_rng_state(), before)
    bn = module[1]
    torch.testing.assert_close(bn.running_mean, torch.tensor([(2.0 + 6.0) / 2, (2.0 + 2.0) / 2]))
    torch.testing.assert_close(bn.running_var, torch.tensor([(2.0 + 2.0) / 2, (8.0 + 0.0) / 2]))
    assert bn.momentum == 0.3 and not module.training and not bn.training and not module[0].training
    module.train()
    recalibrate_batchnorm(module, batches)
    assert module.training and bn.training and module[0].training
    assert recalibrate_batchnorm(module, []) == 0 and bn.running_mean.tolist() == [4.0, 2.0]  # no batches: as it was


def test_teacher_count_must_match_experts(task_a):
    import pytest

    from moe.base.errors import MoEError
    with pytest.raises(MoEError, match="task A: got 2 teachers for 3 experts"):
        merge_teachers(task_a, trained_looking_teachers(2))


def test_a_merge_no_better_than_a_random_start_starts_as_scratch(task_a):
    """merge.min_odds_ratio: the merged model is kept only when its odds of a right validation answer are
    that many times those of scratch's calibrated random start; otherwise training starts from scratch's
    own weights exactly."""
    from moe.base.data import Split, TaskData
    from moe.core.merge import merge_and_calibrate
    from moe.core.methods import initial_model, merged_or_random_start, odds_ratio, state_digest, train_moe
    from .test_alignment import NORM, small_merge_settings

    g = torch.Generator().manual_seed(1)
    split = lambda n: Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 15)
    data = TaskData(split(45), split(30), *NORM)
    settings = small_merge_settings(router_init="fitted", classifier_fit_steps=10)
    merged, report = merge_and_calibrate(task_a, trained_looking_teachers(), [NORM] * 3, data, settings)
    scratch, _ = initial_model("scratch", task_a, [], data, settings)

    start, checked = merged_or_random_start(merged, report, task_a, data, small_merge_settings(min_odds_ratio=1e6))
    assert checked.started_random and 0 <= checked.merged_val_accuracy <= 100 and 0 <= checked.random_val_accuracy <= 100
    assert state_digest(start) == state_digest(scratch)  # scratch's start, not the calibrated random model
    assert "batchnorm" in checked.check_seconds  # the random start's steps, kept
    assert sum(checked.check_seconds.values()) <= checked.seconds["random_start_check"]
    ratio = odds_ratio(checked.merged_val_accuracy, checked.random_val_accuracy, len(data.val))
    assert checked.odds_ratio == ratio  # the report keeps the ratio the rule compared
    kept, report = merged_or_random_start(merged, report, task_a, data, small_merge_settings(min_odds_ratio=ratio - 1e-6))
    assert kept is merged and not report.started_random
    _, report = merged_or_random_start(merged, report, task_a, data, small_merge_settings(min_odds_ratio=ratio + 1e-6))
    assert report.started_random

    # by hand, with half an image added to the right and the wrong answers: real Task A's given teachers
    # (427 of 750 validation images right) against the calibrated random start (284 of 750)
    assert odds_ratio(56.93, 37.87, 750) == pytest.approx((427.5 / 323.5) / (284.5 / 466.5), rel=1e-3)
    assert odds_ratio(56.93, 37.87, 750) == pytest.approx(2.167, abs=1e-3)
    # a perfect score has finite odds; the same accuracy, a ratio of 1; the ratio is symmetric in its order
    assert odds_ratio(100.0, 95.83, 24) == pytest.approx((24.5 / 0.5) / (23.5 / 1.5), rel=1e-3)
    assert odds_ratio(40.0, 40.0, 30) == 1.0
    assert odds_ratio(37.87, 56.93, 750) == pytest.approx(1 / odds_ratio(56.93, 37.87, 750))

    # from there, moe trains exactly as scratch does
    p = {"num_epochs": 1, "lr": 0.01, "batch_size": 15, "patience": 5, "seed": 3, "val_fraction": 0.1,
         "max_train_per_class": 0, "gate_noise_std": 0.1, "warmup_epochs": 0.0, "weight_decay": 0.0,
         "weight_decay_scope": "all", "vector_lr_scale": 1.0, "label_smoothing": 0.0, "ema_decay": 0.0, "flips": "random", "low_res_epochs": 0,
         "low_res_scale": 0.5, "bn_recalibration_batches": 8,
         "diversity_weight": 0.1, "balance_weight": 0.5, "initial_temperature": 2.0, "final_temperature": 0.5}
    runs = [train_moe(method, p, task_a, model, data, [], "fp32").history
            for method, model in (("moe", start), ("scratch", scratch))]
    assert runs[0] == runs[1] and runs[0][0]["train_loss"] > 0


def test_merge_stage_reports_the_check_and_says_which_start_training_gets(tiny_demo):
    """The tiny demo's merge with the check on: metrics/A_merge.json holds both accuracies, their odds
    ratio and the verdict; the stage says it in one line; a threshold the merge cannot reach turns the
    verdict to a random start (which start that is: the test above)."""
    import json

    from .pipeline_repo import run

    repo, env, _ = tiny_demo
    metrics_file = repo / "metrics" / "A_merge.json"
    for threshold in (1.0, 1e6):
        merged = run(["moe", "merge", "--task", "A", "--merge-min-odds-ratio", str(threshold)], repo, env)
        assert merged.returncode == 0, merged.stderr[-2000:]
        m = json.loads(metrics_file.read_text())
        ratio = m["odds_ratio_over_random_start"]
        assert 0 <= m["val_accuracy_random_start"] <= 100 and 0 <= m["val_accuracy_merged"] <= 100
        assert (ratio > 1) == (m["val_accuracy_merged"] > m["val_accuracy_random_start"])
        assert m["started_random"] == (ratio < threshold)
        said = " ".join(merged.stderr.split())
        assert f"odds of a right validation answer are {ratio:.2f} times scratch's random start's" in said
        assert ("training starts from random weights" in said) == m["started_random"]
        # a line as each step ends, the merge's then the random start's (a merge can take minutes)
        steps = ["merge: alignment done in", "merge: batchnorm done in", "merge: feature cache done in",
                 "merge: fits done in", "merge: checking it against scratch's random weights",
                 "random start: batchnorm done in", "random start: feature cache done in", "random start: fits done in"]
        assert [said.find(step) for step in steps] == sorted(said.find(step) for step in steps)
        assert min(said.find(step) for step in steps) >= 0
    assert m["started_random"] and "less than merge.min_odds_ratio (1e+06)" in said
