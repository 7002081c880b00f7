"""The README's queued sweep on a tiny demo: `dvc exp run --queue -S 'diversity_weight=0.0,0.1'`, `dvc queue
start -j 2`, then `dvc exp show` lists both with their metrics, and the run at params.yaml's own value gives
what `dvc repro` gives in the workspace."""

import json
import time

from .pipeline_repo import make_repo, run

TINY_A = {"tasks": {"A": "tasks/A.yaml"}, "demo.train_per_class": 6, "demo.test_per_class": 3, "teacher.epochs": 1,
          "num_epochs": 2, "expert_analysis_interval": 1, "bn_recalibration_batches": 1, "batch_size": 8}


def experiments(shown) -> list[tuple[float, dict]]:
    """(diversity_weight, metrics of metrics/A.json) of every experiment in `dvc exp show --json`."""
    found = []

    def walk(node, under_experiment=False):
        if isinstance(node, dict):
            data = node.get("data")
            if under_experiment and isinstance(data, dict) and "metrics" in data:
                params = data["params"]["params.yaml"]["data"]
                found.append((params["diversity_weight"], (data["metrics"].get("metrics/A.json") or {}).get("data")))
            for key, value in node.items():
                walk(value, under_experiment or key == "experiments")
        elif isinstance(node, list):
            for value in node:
                walk(value, under_experiment)

    walk(shown)
    return found


def test_queued_sweep_runs_both_values(tmp_path):
    repo, env = make_repo(tmp_path, TINY_A)
    queued = run(["dvc", "exp", "run", "--queue", "-S", "diversity_weight=0.0,0.1"], repo, env)
    assert queued.returncode == 0 and queued.stdout.count("Queued experiment") == 2, queued.stdout + queued.stderr
    started = run(["dvc", "queue", "start", "-j", "2"], repo, env)
    assert started.returncode == 0, started.stderr
    deadline = time.time() + 900
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], repo, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert status.count("Success") == 2, status

    shown = run(["dvc", "exp", "show", "--json"], repo, env)
    assert shown.returncode == 0, shown.stderr
    results = dict(experiments(json.loads(shown.stdout)))
    assert set(results) == {0.0, 0.1}
    assert all(m is not None and m["images"] == 45 and 0 <= m["accuracy"] <= 100 for m in results.values())

    workspace = run(["dvc", "repro"], repo, env)  # params.yaml says diversity_weight 0.1
    assert workspace.returncode == 0, workspace.stderr[-2000:]
    assert json.loads((repo / "metrics" / "A.json").read_text()) == results[0.1]
