"""Stage behaviour a user relies on: shipped teachers are used as they are; Ctrl-C saves and resumes."""

import json
import re
import signal
import subprocess
import time

from moe.base.formats import safe_load
from moe.core.checkpoints import save_model
from moe.core.models import TeacherCNN

from .pipeline_repo import TINY_DEMO, make_repo, run


def test_shipped_teacher_checkpoints_replace_pretraining(tmp_path):
    repo, env = make_repo(tmp_path, {"demo.train_per_class": 4, "demo.test_per_class": 2})
    assert run(["moe", "fetch", "--task", "A"], repo, env).returncode == 0
    for i in range(3):
        path = repo / "data" / "A" / "teachers" / "TaskA" / f"model{i + 1}.pth"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(path, TeacherCNN(5), [0.5] * 3, [0.25] * 3, [], [])
    result = run(["moe", "pretrain", "--task", "A"], repo, env)
    assert result.returncode == 0, result.stderr
    origins = json.loads((repo / "plots" / "A" / "teacher_origins.json").read_text())
    assert list(origins.values()) == [f"data/A/teachers/TaskA/model{i}.pth" for i in (1, 2, 3)]


def test_ctrl_c_saves_then_dvc_repro_resumes(tiny_demo):
    repo, env, _ = tiny_demo  # merged (and trained for a few epochs): now train for 10
    params, trained = (repo / "params.yaml").read_text(), f"\nnum_epochs: {TINY_DEMO['num_epochs']}\n"
    assert trained in params
    (repo / "params.yaml").write_text(params.replace(trained, "\nnum_epochs: 10\n"))
    checkpoint = repo / "checkpoints" / "A" / "train_state.pth"
    # SIGINT as a terminal's Ctrl-C sends it (an xdist worker ignores it, and a child would inherit that)
    proc = subprocess.Popen(["moe", "train", "--task", "A"], cwd=repo, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not (checkpoint.exists() and safe_load(checkpoint)["epoch"] >= 2):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "run the same command (or dvc repro) again to resume" in " ".join(err.split())
    # piped, with no terminal: a line per finished epoch all the same, with its figures and the time left
    assert re.search(r"^MoE A epoch 1/10  loss [\d.]+ \(task [\d.]+, diversity [\d.]+, balance [\d.]+\)  "
                     r"train [\d.]+%  val [\d.]+%  [\d.]+ s  left \d+:\d\d$", err, re.M), err
    saved = safe_load(checkpoint)["epoch"]
    assert saved >= 2
    resumed = run(["dvc", "repro", "train@A"], repo, env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from checkpoints/A/train_state.pth after epoch {saved} of 10" in " ".join(resumed.stderr.split())
    assert not checkpoint.exists()
