"""torchrun with 2 CPU processes (gloo) on a tiny task: DDP gradients, equal weights, disjoint shards,
rank 0 alone writing, and a killed run resuming to the uninterrupted result. Also `processes: 2`
through the train stage."""

import json
import os
import subprocess
import sys

import torch

from moe.base.data import normalize
from moe.core.objectives import MoEObjective

from .conftest import ROOT
from .ddp_worker import model, tiny_split

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def torchrun(out, *args, processes=2):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(ROOT / "tests" / "ddp_worker.py"), str(out), *args]
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


def test_gradients_equal_one_process_on_the_same_shards_and_shards_cover_the_batch(tmp_path):
    result = torchrun(tmp_path, "grad")
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"grad_rank{r}.pth", weights_only=True) for r in (0, 1)]
    shards = [r["shard"] for r in ranks]
    assert sorted(torch.cat(shards).tolist()) == list(range(16))  # disjoint and covering
    assert set(shards[0].tolist()).isdisjoint(shards[1].tolist())

    # one process, the same global batch: each shard's loss (per-shard BatchNorm statistics, as every
    # rank computes them; the same dropout draws) averaged, then one backward
    net = model()
    net.train()
    objective = MoEObjective()
    objective.begin_epoch(net, 0, 1)
    train = tiny_split(16, 1)
    x, y = normalize(train.images, [0.3] * 3, [0.2] * 3), train.labels
    for shard in shards:
        torch.manual_seed(123)
        (objective.step(net, x[shard], y[shard]).loss / len(shards)).backward()
    for name, p in net.named_parameters():
        for r in ranks:  # after the all-reduce every rank holds the mean gradient
            torch.testing.assert_close(r["grads"][name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert any(p.grad.abs().sum() > 0 for p in net.parameters())


def test_two_processes_train_alike_only_rank_zero_writes_and_a_killed_run_resumes(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    result = torchrun(whole, "fit")
    assert result.returncode == 0, result.stderr[-3000:]
    weights = [torch.load(whole / f"weights_rank{r}.pth", weights_only=True) for r in (0, 1)]
    for name in weights[0]:  # parameters and BatchNorm statistics identical on both ranks
        assert torch.equal(weights[0][name], weights[1][name]), name
    runs = [json.loads((whole / f"fit_rank{r}.json").read_text()) for r in (0, 1)]
    assert runs[0]["on_epoch"] == [1, 2, 3] and runs[1]["on_epoch"] == []  # rank 0 alone reports
    assert runs[0]["history"] == runs[1]["history"]  # the figures are summed over ranks on both
    assert runs[0]["history"][-1]["train_accuracy"] > 0

    assert torchrun(killed, "fit", "1").returncode != 0  # rank 0 dies after epoch 1's checkpoint
    assert (killed / "state.pth").exists() and not (killed / "weights_rank0.pth").exists()
    result = torchrun(killed, "fit")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = json.loads((killed / "fit_rank0.json").read_text())
    assert resumed["resumed_from"] == 1
    assert resumed["history"] == runs[0]["history"]
    final = torch.load(killed / "weights_rank1.pth", weights_only=True)
    for name in weights[0]:
        torch.testing.assert_close(final[name], weights[0][name], rtol=0, atol=0, msg=name)


def test_processes_two_runs_the_train_and_pretrain_stages_under_torchrun(tmp_path):
    from .pipeline_repo import make_repo, run

    repo, env = make_repo(tmp_path, {"tasks": {"A": "tasks/A.yaml"}, "demo.train_per_class": 6,
                                     "demo.test_per_class": 3, "teacher.epochs": 1, "num_epochs": 2,
                                     "expert_analysis_interval": 1, "bn_recalibration_batches": 1, "batch_size": 8,
                                     "processes": 2})
    result = run(["dvc", "repro", "evaluate@A"], repo, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert out.count("running under torchrun in 2 processes") == 2  # pretrain and train
    assert out.count("task A: best validation accuracy") == 1  # rank 0 alone reports and writes
    assert 0 <= json.loads((repo / "metrics" / "A.json").read_text())["accuracy"] <= 100
    assert not (repo / "checkpoints" / "A" / "train_state.pth").exists()
