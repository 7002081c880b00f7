"""A throwaway copy of the project as its own git + DVC repository, for running `dvc repro` in tests."""

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
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(repo), "DVC_NO_ANALYTICS": "1", "CI": "true",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "test"]):
        result = run(cmd, repo, env)
        assert result.returncode == 0, result.stderr
    return repo, env
