"""`dvc repro` on a tiny configuration in a temporary copy: succeeds, does nothing the second time,
and a forced rerun writes byte-identical outputs (same params and seed, same results)."""

import json
import re

from .pipeline_repo import TINY_DEMO, make_repo, run


def test_dvc_repro_no_op_and_deterministic(tiny_demo):
    repo, env, first = tiny_demo  # after one dvc repro of A and B (tests/conftest.py)
    assert "Running stage 'report@B'" in first
    # a message longer than the 80 columns of a pipe stays one line (a log is read, and grepped, by the line)
    said = re.findall(r"^evaluated as this project's: .*, gating temperature ([\d.]+)$", first, re.M)
    assert len(said) == 2 and all(float(t) > 0 for t in said), first[-3000:]
    for task, classes in (("A", 15), ("B", 12)):
        metrics = json.loads((repo / "metrics" / f"{task}.json").read_text())
        assert 0 <= metrics["accuracy"] <= 100 and set(metrics) == {"accuracy", "images"}
        assert json.loads((repo / "metrics" / f"{task}_data.json").read_text()) == {
            "source": "demo", "classes": classes, "test_images": 3 * classes}
        assert len(json.loads((repo / "plots" / task / "per_class.json").read_text())) == classes
        assert (repo / "plots" / task / "expert_contribution.png").stat().st_size > 1000
        assert (repo / "plots" / task / "confusion.png").stat().st_size > 1000
        compared = json.loads((repo / "metrics" / f"{task}_baselines.json").read_text())["test_accuracy"]
        assert list(compared) == ["moe", "merged, untrained", "teacher ensemble", "oracle (not deployable)"]
        assert compared["moe"] == metrics["accuracy"]
        accuracy = (repo / "plots" / task / "accuracy.csv").read_text().splitlines()
        # the merged start (epoch 0, validation), then each epoch's train and validation
        assert accuracy[0] == "epoch,series,value" and len(accuracy) == 1 + 1 + TINY_DEMO["num_epochs"] * 2
        assert accuracy[1].startswith("0,validation,") and accuracy[2].startswith("1,train,")
        assert "(demo data)" in (repo / "reports" / f"{task}.md").read_text().splitlines()[0]
    assert not (repo / "checkpoints" / "A" / "train_state.pth").exists()  # removed once training completes

    summary = run(["moe", "summary"], repo, {**env, "COLUMNS": "80"})  # the demo's last output
    assert summary.returncode == 0 and "A (demo)" in summary.stdout and "B (demo)" in summary.stdout
    assert max(len(line) for line in summary.stdout.splitlines()) <= 80

    second = run(["dvc", "repro"], repo, env)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout, second.stdout
    assert "up to date" in run(["dvc", "status", "dvc.yaml"], repo, env).stdout.lower()

    # Task A's chain forced (B's is the same code at another size): every output's hash, data files,
    # checkpoints and plots included, is the same as the first time
    before = {p.name: p.read_bytes() for p in (repo / "metrics").glob("*.json")}
    lock_before = (repo / "dvc.lock").read_text()
    forced = run(["dvc", "repro", "-f", "report@A", "compare@A"], repo, env)
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "Running stage 'train@A'" in forced.stdout and "Running stage 'compare@A'" in forced.stdout
    after = {p.name: p.read_bytes() for p in (repo / "metrics").glob("*.json")}
    assert after == before
    assert (repo / "dvc.lock").read_text() == lock_before

    # a bad value stops dvc repro in the check stage, before DVC removes any output to rerun a stage
    data_files = sorted(p.name for p in (repo / "data" / "A").rglob("*"))
    for bad, message in (("source: demo", "params.yaml: parameter 'source' = 'nonsense' is out of range"),
                         ("balance_weight: 0.5", "params.yaml: unknown parameter 'balance_wieght' (did you mean "
                                                 "'balance_weight'?)")):
        params = (repo / "params.yaml").read_text()
        (repo / "params.yaml").write_text(params.replace(bad, "source: nonsense" if "source" in bad else
                                                         "balance_wieght: 0.5"))
        result = run(["dvc", "repro"], repo, env)
        assert result.returncode != 0 and message in " ".join((result.stdout + result.stderr).split())
        assert sorted(p.name for p in (repo / "data" / "A").rglob("*")) == data_files
        (repo / "params.yaml").write_text(params)


def test_bad_parameter_fails_before_work_with_one_line(tmp_path):
    repo, env = make_repo(tmp_path, {})
    params = (repo / "params.yaml").read_text().replace("balance_weight: 0.5", "balance_weight: -2")
    (repo / "params.yaml").write_text(params)
    result = run(["moe", "fetch", "--task", "A"], repo, env)
    assert result.returncode == 1
    assert "params.yaml: parameter 'balance_weight' = -2.0 is out of range" in result.stderr
    assert not (repo / "data").exists()
