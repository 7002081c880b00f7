"""`moe evaluate --checkpoint` on a best model saved by the original project reproduces the original's
own evaluation (../shared/spec/formats.md, "How the original evaluated its released models").

The expected numbers are computed here from those rules alone, with a functional forward written
from the released key layout: nothing of the code under test computes them.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from typer.testing import CliRunner

from moe.base.formats import safe_load
from moe.core.checkpoints import load_moe
from moe.core.models import MoEModel
from stages.cli import app

from .conftest import ROOT


def random_released_state(num_classes: int, seed: int) -> dict:
    """A state_dict in the released key layout with every tensor (BN statistics too) drawn at random."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in MoEModel(num_classes, 3).state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif key.endswith(("running_mean", "bias")):
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
        elif key.endswith("bn.weight") or ".bn." in key or value.dim() == 1:
            state[key] = 1 + 0.1 * torch.randn(value.shape, generator=g)
        else:
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / fan_in) ** 0.5
    state["gating_network.gate_net.4.weight"] *= 0.2  # gates neither uniform nor one-hot: the temperature matters
    return state


def original_forward(sd: dict, x: torch.Tensor, temperature: float) -> torch.Tensor:
    """The original MergedMoEModel in eval mode, written out from its state_dict keys."""
    def bn(h, p):
        return F.batch_norm(h, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"],
                            False, 0.0, 1e-5)

    def conv_block(h, p, pad=1):
        return F.relu(bn(F.conv2d(h, sd[p + "conv.weight"], padding=pad), p + "bn."))

    fe = "feature_extractor."
    h = conv_block(x, fe + "0.")
    h = F.relu(conv_block(h, fe + "1.main_path.0.") + F.conv2d(h, sd[fe + "1.shortcut.weight"]))
    h = F.max_pool2d(h, 2)
    h = F.relu(conv_block(conv_block(h, fe + "3.main_path.0."), fe + "3.main_path.1.") + F.conv2d(h, sd[fe + "3.shortcut.weight"]))
    h = F.max_pool2d(h, 2)
    features = conv_block(h, fe + "5.", pad=0)
    pooled = features.mean(dim=(2, 3))
    experts = []
    for i in range(3):
        p = f"experts.{i}."
        e = F.conv2d(F.conv2d(features, sd[p + "0.weight"], padding=1, groups=512), sd[p + "1.weight"])
        experts.append(F.relu(bn(e, p + "2.")).mean(dim=(2, 3)))
    gn = "gating_network."

    def linear(h, p):
        return F.linear(h, sd[p + "weight"], sd[p + "bias"])

    gate_hidden = F.relu(bn(linear(pooled, gn + "gate_net.0."), gn + "gate_net.1."))
    gates = F.softmax(linear(gate_hidden, gn + "gate_net.4.") / temperature, dim=1)
    extra = F.relu(bn(linear(pooled, gn + "feature_net.0."), gn + "feature_net.1."))
    extra = F.relu(bn(linear(extra, gn + "feature_net.4."), gn + "feature_net.5."))
    combined = sum(gates[:, i:i + 1] * experts[i] for i in range(3))
    return linear(torch.cat([combined, extra], dim=1), "classifier.")


def write_original_archive(root, task: dict, per_class: int, seed: int):
    """Test files in the original layout; a shared class has the same images in every file holding it.
    Returns the raw test images (N x H x W x 3 uint8) and label ids, concatenated in teacher order."""
    rng = np.random.default_rng(seed)
    size = task["image_size"]
    images_of = {c["id"]: rng.integers(0, 256, (per_class, size, size, 3), dtype=np.uint8) for c in task["classes"]}
    for c in images_of:  # a per-class colour cast: the data set's statistics are not ImageNet's
        images_of[c] = np.clip(images_of[c] * 0.6 + rng.integers(0, 100, 3), 0, 255).astype(np.uint8)
    all_images, all_ids = [], []
    for t in task["teachers"]:
        images = np.concatenate([images_of[c] for c in t["classes"]])
        ids = [c for c in t["classes"] for _ in range(per_class)]
        for part in ("train", "test"):
            path = root / t[part]
            path.parent.mkdir(parents=True, exist_ok=True)
            if task["data_format"] == "numpy":
                torch.save({"data": images, "labels": ids, "indices": list(range(len(ids)))}, path)
            else:
                torch.save({"data": torch.from_numpy(images), "labels": torch.tensor(ids)}, path)
        all_images.append(images)
        all_ids += ids
    return np.concatenate(all_images), all_ids


@pytest.mark.parametrize("task_name, num_files_images", [("A", 3 * 5 * 4), ("B", 3 * 5 * 4)])
def test_released_best_model_evaluated_as_the_original(tmp_path, monkeypatch, task_name, num_files_images):
    task = yaml.safe_load((ROOT / "tasks" / f"{task_name}.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    images, ids = write_original_archive(tmp_path / "data" / task_name, task, per_class=4, seed=1)
    assert len(ids) == num_files_images  # Task B: the shared classes count once per file, as in the original
    class_ids = [c["id"] for c in task["classes"]]
    state = random_released_state(len(class_ids), seed=2)
    model = MoEModel(len(class_ids), 3)
    model.load_state_dict(state)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 3, task["image_size"], task["image_size"]))[0].sum().backward()
    optimizer.step()
    checkpoint = tmp_path / "best_model_43.00_epoch12.pth"
    torch.save({"epoch": 12, "model_state_dict": state, "optimizer_state_dict": optimizer.state_dict(),
                "accuracy": 43.0}, checkpoint)

    result = CliRunner().invoke(app, ["evaluate", "--task", str(ROOT / "tasks" / f"{task_name}.yaml"),
                                      "--params", str(ROOT / "params.yaml"), "--checkpoint", str(checkpoint),
                                      "--out", "released"])
    assert result.exit_code == 0, result.output

    # the original's rules: images as they are, statistics over every pixel of the evaluated set, T = 2.0
    x = images.astype(np.float64) / 255
    mean, std = x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2))
    inputs = torch.from_numpy(((x - mean) / std).transpose(0, 3, 1, 2)).float()
    labels = torch.tensor([class_ids.index(c) for c in ids])
    with torch.no_grad():
        expected = original_forward(state, inputs, temperature=2.0)
        at_wrong_temperature = original_forward(state, inputs, temperature=1.0)
        imagenet = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        with_imagenet_stats = original_forward(state, (torch.from_numpy(x.transpose(0, 3, 1, 2)).float() - imagenet[0]) / imagenet[1], 2.0)
    # the rules matter on this model: a wrong temperature or the ImageNet constants change the logits
    assert (expected - at_wrong_temperature).abs().max() > 0.05
    assert (expected - with_imagenet_stats).abs().max() > 0.05

    got = safe_load(tmp_path / "released" / "test_predictions.pth")
    assert torch.equal(got["labels"], labels)
    assert (got["logits"] - expected).abs().max() < 1e-3
    assert torch.equal(got["logits"].argmax(1), expected.argmax(1))  # the same prediction for every image
    metrics = json.loads((tmp_path / "released" / "metrics.json").read_text())
    assert metrics["images"] == num_files_images
    assert metrics["accuracy"] == round(100 * (expected.argmax(1) == labels).sum().item() / len(labels), 2)
    assert load_moe(checkpoint, _spec(task_name)).temperature == 2.0


def _spec(name):
    from moe.base.tasks import load_task
    return load_task(ROOT / "tasks" / f"{name}.yaml")


def test_trained_model_scores_its_recorded_validation_accuracy(tmp_path, monkeypatch):
    """The file train writes is the router that was selected: loaded as evaluate loads it, it scores
    exactly the validation accuracy training recorded for its epoch, at that epoch's temperature."""
    from moe.core.checkpoints import read_metadata
    from moe.base.data import prepare_task_data
    from moe.base.params import load_params
    from moe.base.tasks import load_task
    from moe.core.inference import predict

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update({"demo": {"train_per_class": 8, "test_per_class": 2}, "teacher": {**params["teacher"], "epochs": 1, "lr": 0.001, "batch_size": 8},
                   "num_epochs": 4, "patience": 10, "batch_size": 8, "bn_recalibration_batches": 1,
                   "expert_analysis_interval": 10, "initial_temperature": 3.0, "final_temperature": 0.4,
                   "method": "scratch",  # a random start: an epoch is selected (a merged start may be kept, as epoch 0)
                   "precision": "fp32"})  # training validates at its own precision; evaluate computes in fp32
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    task = str(ROOT / "tasks" / "A.yaml")
    for stage in ("fetch", "pretrain", "merge", "train"):
        result = CliRunner().invoke(app, [stage, "--task", task])
        assert result.exit_code == 0, (stage, result.output)

    path = tmp_path / "models" / "A" / f"{params['model_name']}.pth"
    meta = read_metadata(path)
    best = meta["history"][meta["best_epoch"] - 1]
    assert meta["gate_temperature"] == best["temperature"]
    model = load_moe(path, load_task(task))
    assert model.temperature == best["temperature"] and model.temperature not in (1.0, 2.0)
    p = load_params(tmp_path / "params.yaml")
    data = prepare_task_data(load_task(task), tmp_path / "data" / "A", p["val_fraction"], p["seed"], p["max_train_per_class"])
    logits, _ = predict(model, data.val.images, meta["mean"], meta["std"])
    assert 100.0 * (logits.argmax(1) == data.val.labels).float().mean().item() == best["val_accuracy"] == best["best_val_accuracy"]
