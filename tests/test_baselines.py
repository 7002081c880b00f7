"""Distillation from teachers with overlapping classes, the teacher ensemble and the oracle: each
against numbers worked out by hand on a constructed case."""

import math

import torch

from moe.base.tasks import parse_task
from moe.core.baselines import ensemble_scores, oracle_predictions, output_index
from moe.core.losses import distillation_loss

# three classes; teacher a holds 0 and 1, teacher b holds 1 and 2: class 1 is shared
SPEC = parse_task({"name": "t", "image_size": 16, "classes": [{"id": 10, "name": "x"}, {"id": 20, "name": "y"},
                                                              {"id": 30, "name": "z"}],
                   "teachers": [{"name": "a", "classes": [10, 20]}, {"name": "b", "classes": [30, 20]}]})


def test_output_index_follows_each_teachers_sorted_ids():
    assert [i.tolist() for i in output_index(SPEC)] == [[0, 1], [1, 2]]


def test_distillation_loss_by_hand_with_a_shared_class():
    student = torch.tensor([[0.0, math.log(3.0), 0.0]], requires_grad=True)  # restricted to {0,1}: 1/4, 3/4
    teacher_a = torch.tensor([[math.log(1.0), math.log(1.0)]])  # 1/2, 1/2 over (x, y)
    teacher_b = torch.tensor([[math.log(1.0), math.log(3.0)]])  # 1/4, 3/4 over (y, z); restricted student {1,2}: 3/4, 1/4
    loss = distillation_loss(student, [teacher_a, teacher_b], output_index(SPEC), temperature=1.0)
    kl_a = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    kl_b = 0.25 * math.log(0.25 / 0.75) + 0.75 * math.log(0.75 / 0.25)
    assert abs(loss.item() - (kl_a + kl_b) / 2) < 1e-6
    # the shared class y is pulled by both teachers: its gradient is the sum of the two teachers' pulls
    loss.backward()
    grad_y = student.grad[0, 1].item()
    # d KL / d z_y for teacher a: q_y - p_y = 3/4 - 1/2; for teacher b: q_y - p_y = 3/4 - 1/4; mean of the two
    assert abs(grad_y - ((0.75 - 0.5) + (0.75 - 0.25)) / 2) < 1e-6


def test_distillation_temperature_scales_as_t_squared():
    s, t = torch.tensor([[1.0, 2.0, 0.5]]), [torch.tensor([[0.3, -0.2]]), torch.tensor([[1.0, 0.0]])]
    at_2 = distillation_loss(s, t, output_index(SPEC), 2.0)
    manual = 0.0
    for logits, index in zip(t, output_index(SPEC)):
        p = (logits / 2).softmax(1)
        q = (s[:, index] / 2).softmax(1)
        manual += (p * (p / q).log()).sum().item() * 4
    assert abs(at_2.item() - manual / 2) < 1e-6


def test_ensemble_takes_the_most_confident_teacher_per_class():
    a = torch.log(torch.tensor([[0.9, 0.1], [0.4, 0.6]]))  # image 0: a says x; image 1: a leans y
    b = torch.log(torch.tensor([[0.5, 0.5], [0.2, 0.8]]))  # over (y, z); image 1: b says z strongly
    scores = ensemble_scores(SPEC, [a, b])
    torch.testing.assert_close(scores, torch.tensor([[0.9, 0.5, 0.5], [0.4, 0.6, 0.8]]))
    assert scores.argmax(1).tolist() == [0, 2]


def test_oracle_asks_a_teacher_that_holds_the_true_class():
    a = torch.log(torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8]]))
    b = torch.log(torch.tensor([[0.3, 0.7], [0.6, 0.4], [0.6, 0.4]]))
    labels = torch.tensor([0, 2, 1])  # x -> a (right); z -> b (b says y: wrong); y -> a, the first holder (right)
    assert oracle_predictions(SPEC, [a, b], labels).tolist() == [0, 1, 1]


def test_kd_weight_zero_is_the_moe_objective_exactly_and_distill_trains(tmp_path):
    from moe.base.data import Split
    from moe.core.models import MoEModel, TeacherCNN
    from moe.core.objectives import DistillObjective, MoEObjective
    from moe.core.runtime import seed_everything
    from moe.core.training import TrainConfig, fit

    g = torch.Generator().manual_seed(0)
    train = Split(torch.randint(0, 255, (24, 3, 16, 16), dtype=torch.uint8, generator=g), torch.arange(24) % 3)
    val = Split(torch.randint(0, 255, (9, 3, 16, 16), dtype=torch.uint8, generator=g), torch.arange(9) % 3)
    cfg = TrainConfig(num_epochs=2, batch_size=8, patience=9)
    teachers = [TeacherCNN(2).eval(), TeacherCNN(2).eval()]

    def run(objective):
        seed_everything(1)
        model = MoEModel(3, 2)
        result = fit(model, objective, train, val, cfg, [0.5] * 3, [0.25] * 3)
        return result, model

    plain, plain_model = run(MoEObjective())
    zero, zero_model = run(DistillObjective(kd_weight=0.0).attach(teachers, output_index(SPEC), [lambda x: x] * 2))
    assert plain.history == zero.history
    assert all(torch.equal(a, b) for a, b in zip(plain_model.state_dict().values(), zero_model.state_dict().values()))
    kd, _ = run(DistillObjective(kd_weight=1.0).attach(teachers, output_index(SPEC), [lambda x: x] * 2))
    assert kd.history[0]["distillation_loss"] > 0 and kd.history[0]["train_loss"] != plain.history[0]["train_loss"]


def test_targets_kept_per_image_are_the_teachers_predictions_and_no_teacher_runs_while_training():
    """kd_targets images: the teachers predict once, in the first epoch, on every training image and
    its mirror image; a crop of image i (mirrored or not) then learns from those logits of image i."""
    from moe.base.data import Split, normalize
    from moe.core.models import MoEModel, TeacherCNN
    from moe.core.objectives import DistillObjective
    from moe.core.runtime import seed_everything
    from moe.core.training import TrainConfig, fit

    class Counted(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.calls = net, 0

        def forward(self, x):
            self.calls += 1
            return self.net(x)

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (24, 3, 16, 16), dtype=torch.uint8, generator=g)
    mean, std = [0.5, 0.4, 0.3], [0.25, 0.2, 0.3]
    teachers = [Counted(TeacherCNN(2)), Counted(TeacherCNN(2))]
    renormalise = [lambda x: x, lambda x: 2.0 * x + 0.1]  # the second teacher was trained on other statistics
    objective = DistillObjective(kd_weight=1.0, kd_targets="images").attach(teachers, output_index(SPEC), renormalise,
                                                                             images, mean, std)
    seed_everything(1)
    result = fit(MoEModel(3, 2), objective, Split(images, torch.arange(24) % 3),
                 Split(images[:9], torch.arange(9) % 3), TrainConfig(num_epochs=3, batch_size=8, patience=9), mean, std)
    assert [t.calls for t in teachers] == [2, 2]  # one batch of 24 images, plain and mirrored, in three epochs
    assert all(r["distillation_loss"] > 0 for r in result.history)

    indices, mirrored = torch.tensor([3, 17, 3]), torch.tensor([False, True, True])
    looked_up = objective.teacher_logits(None, (indices, mirrored))
    x = normalize(images[indices], mean, std)
    x[mirrored] = x[mirrored].flip(3)
    with torch.no_grad():
        for got, t, f in zip(looked_up, teachers, renormalise):
            torch.testing.assert_close(got, t(f(x)), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(looked_up[0][0], looked_up[0][2])  # the mirror image is a view of its own
    objective.cache_targets(images, mean, std, batch_size=10)  # in batches: the same logits
    torch.testing.assert_close(objective.teacher_logits(None, (indices, mirrored))[1], looked_up[1])
