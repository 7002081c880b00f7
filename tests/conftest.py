import os
import shutil
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2` (run.sh test): the workers share the cores,
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread each, for the stages they start too

import pytest
import torch
from filelock import FileLock

from moe.base.tasks import load_task

from .pipeline_repo import TINY_DEMO, copy_repo, make_repo, repo_env, run

ROOT = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = ROOT.parent / "shared" / "data" / "cas771-standin.zip"


@pytest.fixture(autouse=True)
def _single_thread_determinism():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def task_a():
    return load_task(ROOT / "tasks" / "A.yaml")


@pytest.fixture(scope="session")
def task_b():
    return load_task(ROOT / "tasks" / "B.yaml")


def pytest_collection_modifyitems(items):
    """The real-image checks, the longest, start first: under xdist (run.sh test) none is then left
    running alone at the end."""
    items.sort(key=lambda item: "test_real_data.py" not in item.nodeid)


@pytest.fixture(scope="session")
def tiny_demo_built(tmp_path_factory):
    """The tiny demo (A and B) after one `dvc repro`, committed: built once per test session (the
    xdist workers share it: the first to need it builds it under a lock), never changed."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base folder sits in the session's one
        shared = shared.parent
    built = shared / "tiny_demo" / "first_repro.txt"
    with FileLock(str(shared / "tiny_demo.lock")):
        if not built.exists():
            shutil.rmtree(built.parent, ignore_errors=True)
            built.parent.mkdir()
            repo, env = make_repo(built.parent, TINY_DEMO)
            first = run(["dvc", "repro"], repo, env)
            assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
            for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "dvc repro"]):
                assert run(cmd, repo, env).returncode == 0
            built.write_text(first.stdout + first.stderr)  # the stages' messages go to stderr
    repo = built.parent / "repo"
    return repo, repo_env(repo), built.read_text()


@pytest.fixture()
def tiny_demo(tiny_demo_built, tmp_path):
    """(repo, env, output of its first dvc repro): a copy of the built tiny demo for this test alone."""
    repo, env, first = tiny_demo_built
    return (*copy_repo(repo, env, tmp_path / "repo"), first)
