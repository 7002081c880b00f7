"""A throwaway copy of the project as its own git + DVC repository, for running `dvc repro` in tests.

``TINY_DEMO`` is the configuration that the dvc-repro tests share: `tiny_demo` (tests/conftest.py)
runs `dvc repro` on it once per session and hands each test a copy, so that each pays only for what
it adds on top (an own task, a sweep, the comparison, a forced rerun)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TRACKED = ["moe", "stages", "comparison", "tasks", "metrics", "plots", "reports", "checked", "dvc.yaml", "params.yaml", "pyproject.toml",
           ".gitignore"]


# Task A and B on generated shapes, a few images per class; the merge's fits shortened to match
TINY_DEMO = {"demo.train_per_class": 6, "demo.test_per_class": 3, "teacher.epochs": 2, "num_epochs": 2,
             "expert_analysis_interval": 2, "bn_recalibration_batches": 2, "batch_size": 8,
             "merge.alignment_images": 24, "merge.router_fit_steps": 100, "merge.classifier_fit_steps": 100,
             # two methods and one merge ablation, from the shipped list (tests/test_comparison.py; distill
             # runs through DVC in tests/test_onnx_teachers.py)
             "comparison.variants": {"moe": {}, "scratch": {"method": "scratch"},
                                     "plain_merge": {"merge.alignment": "none", "merge.router_init": "fresh",
                                                     "merge.classifier_fit_steps": 0, "merge.min_odds_ratio": 0}}}


def run(cmd, cwd, env, timeout=1800):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def make_repo(tmp_path: Path, params: dict) -> tuple[Path, dict]:
    if shutil.which("dvc", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("dvc is not installed beside this Python")
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in TRACKED:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / name)
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in params.items():
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = repo_env(repo)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "test"]):
        result = run(cmd, repo, env)
        assert result.returncode == 0, result.stderr
    return repo, env


def repo_env(repo: Path) -> dict:
    """The environment the test repository's commands run in: this Python's tools first, its own code."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(repo), "DVC_NO_ANALYTICS": "1", "CI": "true",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def copy_repo(repo: Path, env: dict, target: Path) -> tuple[Path, dict]:
    """A copy of a test repository (its git history, DVC cache and outputs) that a test may change."""
    shutil.copytree(repo, target, symlinks=True)
    return target, {**env, "PYTHONPATH": str(target)}
