"""The methods a comparison needs are parameters of the stages: scratch (merge), distill (train)."""

import torch
import yaml
from typer.testing import CliRunner

from moe.base.formats import read_state_dict
from moe.base.tasks import load_task
from moe.core.checkpoints import read_metadata
from moe.core.methods import random_moe
from stages.cli import app

from .conftest import ROOT


def test_scratch_merge_and_distill_training_through_the_stages(tmp_path, monkeypatch):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update({"demo": {"train_per_class": 6, "test_per_class": 2}, "teacher": {**params["teacher"], "epochs": 1, "lr": 0.001, "batch_size": 8},
                   "num_epochs": 1, "batch_size": 8, "bn_recalibration_batches": 1, "expert_analysis_interval": 10})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    task = str(ROOT / "tasks" / "A.yaml")
    for args in (["fetch"], ["pretrain"], ["merge", "--method", "scratch"]):
        result = CliRunner().invoke(app, [*args, "--task", task])
        assert result.exit_code == 0, result.output
    scratch = read_state_dict(tmp_path / "models" / "A" / "merged.pth")
    expected = random_moe(load_task(task), params["seed"]).state_dict()
    assert all(torch.equal(scratch[k], v) for k, v in expected.items())  # no teacher weight in it

    result = CliRunner().invoke(app, ["train", "--task", task, "--method", "distill", "--kd-weight", "0.5"])
    assert result.exit_code == 0, result.output
    history = read_metadata(tmp_path / "models" / "A" / "merged_moe.pth")["history"]
    assert history[0]["distillation_loss"] > 0
