"""The README's queued sweep on the tiny demo: `dvc exp run --queue -S 'diversity_weight=0.0,0.2'`, `dvc
queue start -j 2`, then `dvc exp show` lists both with their metrics, and `dvc repro` with params.yaml set
to one of the values gives what its experiment gave. The demo's teachers and merge come from the
committed run: an experiment reruns only what its parameter changes."""

import json
import time

from .pipeline_repo import run


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


def test_queued_sweep_runs_both_values(tiny_demo):
    repo, env, _ = tiny_demo  # A and B after dvc repro, committed, with diversity_weight 0.1
    queued = run(["dvc", "exp", "run", "--queue", "-S", "diversity_weight=0.0,0.2", "evaluate@A"], repo, env)
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
    assert set(results) == {0.0, 0.2}
    assert all(m is not None and m["images"] == 45 and 0 <= m["accuracy"] <= 100 for m in results.values())

    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("\ndiversity_weight: 0.1", "\ndiversity_weight: 0.2"))
    workspace = run(["dvc", "repro", "evaluate@A"], repo, env)
    assert workspace.returncode == 0, workspace.stderr[-2000:]
    ran = [line for line in workspace.stdout.splitlines() if line.startswith("Running stage")]
    assert "Running stage 'pretrain@A':" not in ran and "Running stage 'merge@A':" not in ran, ran
    assert json.loads((repo / "metrics" / "A.json").read_text()) == results[0.2]
