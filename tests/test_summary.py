"""`moe summary` in a fresh clone: it reads only files that git holds (no data, no models), shows the
committed demo results, and a task of one's own that has not run yet is one line, not a traceback."""

import os
import shutil
import subprocess
import sys

import yaml

from .conftest import ROOT


def fresh_clone(target):
    """The files a clone of this checkout has (tracked ones, as they are in the working tree)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file() and not name.startswith("tests/"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, target / name)
    return target


def moe(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "stages.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_summary_in_a_fresh_clone_with_only_a_task_of_ones_own(tmp_path):
    clone = fresh_clone(tmp_path / "clone")
    assert not (clone / "models").exists() and not (clone / "data").exists()
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["tasks"] = {"mine": "inputs/mine"}  # the user kept only their own task
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (clone / "tasks" / "mine.yaml").write_text((ROOT / "tasks" / "A.yaml").read_text().replace("name: A", "name: mine"))

    shown = moe(["summary"], clone)
    assert shown.returncode == 0, shown.stderr
    rows = [line.replace("│", " ").split() for line in shown.stdout.splitlines()]
    committed = {task: yaml.safe_load((ROOT / "metrics" / f"{task}.json").read_text())["accuracy"] for task in "AB"}
    for task in "AB":  # the committed demo results, with their accuracy as metrics/ holds it
        row = next(r for r in rows if r[:2] == [task, "(demo)"])
        assert f"{committed[task]:.1f}" in row
    assert max(map(len, shown.stdout.splitlines())) <= 80

    mine = moe(["summary", "mine", "A"], clone)  # one task without results: skipped in one line
    assert mine.returncode == 0, mine.stderr
    assert mine.stderr.strip().splitlines() == ["summary: task mine skipped: metrics/mine.json: file not found"]
    assert any(line.replace("│", " ").split()[:2] == ["A", "(demo)"] for line in mine.stdout.splitlines())

    nothing = moe(["summary", "mine"], clone)
    assert nothing.returncode == 1 and "no task has results yet" in nothing.stderr
    assert "Traceback" not in nothing.stderr
