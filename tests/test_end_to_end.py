"""The whole library path on a tiny task of our own: demo data -> teachers -> merge -> MoE -> test."""

import torch

from moe.base.data import load_task_split, normalize, prepare_task_data, prepare_teacher_data
from moe.base.tasks import parse_task
from moe.core.inference import predict
from moe.core.folding import recalibrate_batchnorm
from moe.core.merge import merge_teachers
from moe.core.models import TeacherCNN
from moe.core.objectives import CrossEntropy, MoEObjective
from moe.core.training import TrainConfig, fit
from moe.results.evaluation import accuracy_report
from moe.sources.demo import generate_demo_archive

TINY = {
    "name": "tiny", "image_size": 16, "data_format": "torch",
    "classes": [{"id": i, "name": f"c{i}"} for i in range(6)],
    "teachers": [{"name": f"t{k}", "classes": [2 * k, 2 * k + 1], "train": f"t{k}_train.pth", "test": f"t{k}_test.pth"}
                 for k in range(3)],
}


def test_pipeline_learns_well_above_chance(tmp_path):
    spec = parse_task(TINY)
    generate_demo_archive(spec, tmp_path, train_per_class=40, test_per_class=20, seed=3)
    data = prepare_task_data(spec, tmp_path, 0.1, seed=0)
    teachers = []
    for i in range(3):
        tr, va, te = prepare_teacher_data(spec, tmp_path, i, data)
        t = TeacherCNN(2)
        fit(t, CrossEntropy(), tr, va, TrainConfig(num_epochs=4, lr=2e-3, batch_size=16, patience=99, seed=i), data.mean, data.std)
        teachers.append(t)
    moe = merge_teachers(spec, teachers)
    recalibrate_batchnorm(moe.feature_extractor, [normalize(data.train.images[:64], data.mean, data.std)])
    result = fit(moe, MoEObjective(), data.train, data.val, TrainConfig(num_epochs=5, lr=2e-3, batch_size=16, patience=99),
                   data.mean, data.std)
    test = load_task_split(spec, tmp_path, "test")
    logits, gates = predict(moe, test.images, data.mean, data.std)
    report = accuracy_report(spec, logits, test.labels)
    assert report["accuracy"] >= 60.0, report  # chance is 16.7 %
    assert torch.allclose(gates.sum(1), torch.ones(len(gates)), atol=1e-5)
    assert len(result.history) == 5 and {"diversity_loss", "balance_loss", "temperature"} <= set(result.history[0])
    # each epoch logs the learning rate it ran at: the first at the initial rate, then cosine-annealed
    assert result.history[0]["lr"] == 2e-3 and result.history[1]["lr"] < 2e-3
