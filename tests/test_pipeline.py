"""`dvc repro` on a tiny configuration in a temporary copy: succeeds, then is a no-op."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

TRACKED = ["moe", "stages", "tasks", "metrics", "plots", "dvc.yaml", "params.yaml", "pyproject.toml", ".gitignore"]


def run(cmd, cwd, env):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture()
def tiny_repo(tmp_path):
    if shutil.which("dvc", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("dvc is not installed beside this Python")
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in TRACKED:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update({"demo": {"train_per_class": 6, "test_per_class": 3}, "num_epochs": 1, "expert_analysis_interval": 1,
                   "bn_recalibration_batches": 1, "batch_size": 8})
    params["teacher"]["epochs"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(repo), "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "tiny"]):
        assert run(cmd, repo, env).returncode == 0
    return repo, env


def test_dvc_repro_then_nothing_to_do(tiny_repo):
    repo, env = tiny_repo
    first = run(["dvc", "repro"], repo, env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for task in "AB":
        metrics = yaml.safe_load((repo / "metrics" / f"{task}.json").read_text())
        assert 0 <= metrics["accuracy"] <= 100 and len(metrics["per_class"]) == (15 if task == "A" else 12)
        assert (repo / "plots" / task / "expert_contribution.png").stat().st_size > 1000
    second = run(["dvc", "repro"], repo, env)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout, second.stdout
    status = run(["dvc", "status"], repo, env)
    assert "up to date" in status.stdout.lower(), status.stdout
