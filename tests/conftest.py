from pathlib import Path

import pytest
import torch

from moe.base.tasks import load_task

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
