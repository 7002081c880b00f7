"""Nothing lost: a run killed with SIGKILL resumes and ends exactly where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from moe.base.errors import MoEError
from moe.base.formats import safe_load
from moe.core.curves import history_tables
from moe.core.models import MoEModel
from moe.core.objectives import MoEObjective
from moe.core.training import TrainConfig, fit

from .conftest import ROOT

SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from moe.base.data import prepare_task_data
    from moe.sources.demo import generate_demo_archive
    from moe.core.models import MoEModel
    from moe.core.runtime import seed_everything
    from moe.base.tasks import parse_task
    from moe.core.objectives import MoEObjective
    from moe.core.training import TrainConfig, fit
    root, checkpoint, out, extra = sys.argv[1:5]
    spec = parse_task({"name": "tiny", "image_size": 16, "classes": [{"id": i, "name": str(i)} for i in range(4)],
                       "teachers": [{"name": "a", "classes": [0, 1], "train": "a_tr.pth", "test": "a_te.pth"},
                                    {"name": "b", "classes": [2, 3], "train": "b_tr.pth", "test": "b_te.pth"}]})
    generate_demo_archive(spec, root, 24, 4, seed=5)
    data = prepare_task_data(spec, root, 0.25, seed=0)
    seed_everything(7)
    model = MoEModel(4, 2)
    result = fit(model, MoEObjective(), data.train, data.val, TrainConfig(num_epochs=6, batch_size=8, patience=99,
                                                                   **json.loads(extra)),
                   data.mean, data.std, checkpoint=checkpoint)
    json.dump({"history": result.history, "best_epoch": result.best_epoch,
               "weight_sum": float(sum(v.double().sum() for v in result.best_state.values() if v.is_floating_point()))},
              open(out, "w"))
""")


def run_script(tmp_path, name, kill_after_epoch=None, extra="{}"):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    checkpoint, out = tmp_path / f"{name}.ckpt", tmp_path / f"{name}.json"
    cmd = [sys.executable, str(script), str(tmp_path / "data"), str(checkpoint), str(out), extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if kill_after_epoch is not None:
        proc = subprocess.Popen(cmd, env=env)
        deadline = time.time() + 300
        while time.time() < deadline:
            if checkpoint.exists() and safe_load(checkpoint)["epoch"] >= kill_after_epoch:
                break
            assert proc.poll() is None, "finished before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists()
        assert safe_load(checkpoint)["epoch"] >= kill_after_epoch
    subprocess.run(cmd, env=env, check=True, timeout=300)
    return json.loads(out.read_text())


@pytest.mark.parametrize("extra", ["{}", '{"ema_decay": 0.9, "weight_decay_scope": "matrices"}'],
                         ids=["plain", "weight-average"])
def test_killed_run_resumes_to_identical_result(tmp_path, extra):
    uninterrupted = run_script(tmp_path, "straight", extra=extra)
    resumed = run_script(tmp_path, "killed", kill_after_epoch=2, extra=extra)
    assert resumed == uninterrupted


def _tiny():
    g = torch.Generator().manual_seed(0)
    from moe.base.data import Split
    make = lambda n: Split(torch.randint(0, 255, (n, 3, 16, 16), dtype=torch.uint8, generator=g),
                           torch.arange(n) % 3)
    return make(24), make(9)


def test_changed_settings_start_fresh_and_say_so(tmp_path):
    train_set, val_set = _tiny()
    ckpt = tmp_path / "state.pth"
    fit(MoEModel(3, 3), MoEObjective(), train_set, val_set, TrainConfig(num_epochs=1, batch_size=8), [0.5] * 3, [0.25] * 3, checkpoint=ckpt)
    said = []
    result = fit(MoEModel(3, 3), MoEObjective(), train_set, val_set, TrainConfig(num_epochs=2, batch_size=8, lr=5e-4),
                   [0.5] * 3, [0.25] * 3, checkpoint=ckpt, say=said.append)
    assert any("different settings; starting fresh" in s for s in said)
    assert result.resumed_from is None and len(result.history) == 2


def test_divergence_stops_with_epoch_and_term_and_keeps_checkpoint(tmp_path):
    train_set, val_set = _tiny()
    ckpt = tmp_path / "state.pth"
    cfg = TrainConfig(num_epochs=6, batch_size=8, lr=1e9, weight_decay=0)
    with pytest.raises(MoEError, match=r"training diverged at epoch \d+: the (total|task|diversity|balance) loss is (nan|inf)"):
        fit(MoEModel(3, 3), MoEObjective(), train_set, val_set, cfg, [0.5] * 3, [0.25] * 3, checkpoint=ckpt)


def test_resumed_training_writes_the_same_model_file(tmp_path):
    """Ctrl-C after an epoch, then the same command: the model file is byte-identical to an
    uninterrupted run's, so DVC sees no change."""
    from moe.core.checkpoints import save_model
    from moe.core.runtime import seed_everything

    train_set, val_set = _tiny()
    cfg = TrainConfig(num_epochs=4, batch_size=8, patience=99)

    def run(name, stop_after=None):
        seed_everything(3)
        model = MoEModel(3, 3)

        def on_epoch(record, current):
            if current is not None and record["epoch"] == stop_after:
                raise KeyboardInterrupt

        result = fit(model, MoEObjective(), train_set, val_set, cfg, [0.5] * 3, [0.25] * 3,
                     checkpoint=tmp_path / f"{name}.state", on_epoch=on_epoch)
        save_model(tmp_path / f"{name}.pth", model, [0.5] * 3, [0.25] * 3, [0, 1, 2], ["a", "b", "c"],
                   history=result.history, best_epoch=result.best_epoch)
        return result

    run("straight")
    with pytest.raises(KeyboardInterrupt):
        run("resumed", stop_after=2)
    assert not (tmp_path / "resumed.pth").exists()
    assert run("resumed").resumed_from == 2
    assert (tmp_path / "resumed.pth").read_bytes() == (tmp_path / "straight.pth").read_bytes()


def test_train_never_resumes_from_a_run_of_another_merged_model(tmp_path, monkeypatch):
    """Interrupt `moe train`, change the merged model (same size on disk), train again: the run starts
    fresh. The same interruption with the merged model unchanged resumes."""
    import yaml
    from typer.testing import CliRunner

    import stages.train
    from stages.cli import app

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update({"demo": {"train_per_class": 6, "test_per_class": 2}, "teacher": {**params["teacher"], "epochs": 1, "lr": 0.001, "batch_size": 8},
                   "num_epochs": 2, "batch_size": 8, "bn_recalibration_batches": 1, "expert_analysis_interval": 10,
                   "merge": {**params["merge"], "alignment_images": 16, "router_fit_steps": 5, "classifier_fit_steps": 5}})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    task = str(ROOT / "tasks" / "A.yaml")
    invoke = lambda *args: CliRunner().invoke(app, [*args, "--task", task])
    for stage in ("fetch", "pretrain", "merge"):
        assert invoke(stage).exit_code == 0
    merged = tmp_path / "models" / "A" / "merged.pth"
    real_tables = stages.train.history_tables

    def interrupted_train():
        def stop(*args):  # called after the epoch's checkpoint is written
            raise KeyboardInterrupt
        monkeypatch.setattr(stages.train, "history_tables", stop)
        assert invoke("train").exit_code == 130
        monkeypatch.setattr(stages.train, "history_tables", real_tables)

    interrupted_train()
    size = merged.stat().st_size
    assert invoke("merge", "--merge-classifier-fit-steps", "6").exit_code == 0  # other weights, the same file size
    assert merged.stat().st_size == size
    again = invoke("train")
    assert again.exit_code == 0, again.output
    assert "starting fresh" in again.output and "resuming" not in again.output

    interrupted_train()
    resumed = invoke("train")
    assert resumed.exit_code == 0 and "resuming from" in resumed.output and "after epoch 1 of 2" in resumed.output


def test_a_start_better_than_every_epoch_is_kept(tmp_path):
    """start_is_candidate: training on shuffled labels makes every epoch worse than the start, so the
    start (epoch 0) is selected and the model ends with exactly its weights and gating temperature."""
    train_set, val_set = _tiny()
    torch.manual_seed(0)
    model = MoEModel(3, 3)
    fit(model, MoEObjective(), train_set, val_set, TrainConfig(num_epochs=3, batch_size=8, patience=99),
        [0.5] * 3, [0.25] * 3)
    model.set_temperature(1.7)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    from moe.base.data import Split

    shuffled = Split(train_set.images, train_set.labels[torch.randperm(len(train_set.labels))])
    said = []
    result = fit(model, MoEObjective(), shuffled, val_set, TrainConfig(num_epochs=2, batch_size=8, lr=0.05, patience=99),
                 [0.5] * 3, [0.25] * 3, say=said.append, start_is_candidate=True)
    assert result.start["epoch"] == 0 and any("before training" in s for s in said)
    assert max(r["val_accuracy"] for r in result.history) <= result.start["val_accuracy"]  # no epoch beat it
    assert result.best_epoch == 0 and result.best_record is result.start
    assert all(torch.equal(model.state_dict()[k], v) for k, v in start.items())
    assert model.temperature == 1.7
    # the accuracy plot starts at the kept start, so a reader sees why the model is epoch 0's
    accuracy = history_tables(result.history, ["a", "b", "c"], result.start)["accuracy"]
    assert accuracy[0] == {"epoch": 0, "series": "validation", "value": result.start["val_accuracy"]}
    assert [r["epoch"] for r in accuracy[1:]] == [1, 1, 2, 2]
