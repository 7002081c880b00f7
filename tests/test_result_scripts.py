"""The scripts that turn committed result records into figures read those records as written."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_record(method, tests, seconds):
    epochs = [{"epoch": i + 1, "val": t, "test": t, "test_flip": t, "routing": 50.0, "seconds": s}
              for i, (t, s) in enumerate(zip(tests[1:], seconds[1:]))]
    return {"method": method, "start": {"test": tests[0], "test_flip": tests[0], "routing": 50.0, "seconds": seconds[0]},
            "per_epoch": epochs, "best_epoch": len(epochs), "selected": {"test": tests[-1]}}


def test_plot_methods_reads_merge_table_records(tmp_path):
    plot_methods = _script("plot_methods")
    records = tmp_path / "runs.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in [
        {"teacher ensemble / oracle": {"ensemble": 30.0, "oracle": 55.0}},
        _run_record("moe", [32.5, 35.0, 38.0], [120.0, 240.0, 360.0]),
        _run_record("scratch", [8.3, 22.0, 27.0], [0.0, 90.0, 180.0])]))
    runs, baselines = plot_methods.read_records(records)
    assert [r["method"] for r in runs] == ["moe", "scratch"]
    assert baselines == {"ensemble": 30.0, "oracle": 55.0}
    assert plot_methods.curve(runs[0]) == [(0, 2.0, 32.5), (1, 4.0, 35.0), (2, 6.0, 38.0)]
    out = tmp_path / "accuracy.png"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_methods.py"), str(records), str(out)], check=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_methods_says_when_there_is_nothing_to_draw(tmp_path):
    records = tmp_path / "baselines_only.jsonl"
    records.write_text(json.dumps({"teacher ensemble / oracle": {"ensemble": 30.0, "oracle": 55.0}}))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_methods.py"), str(records), str(tmp_path / "x.png")],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "no training records" in done.stderr and str(records) in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_plot_methods_names_a_broken_records_file(tmp_path):
    records = tmp_path / "runs.jsonl"
    records.write_text(json.dumps(_run_record("moe", [32.5, 35.0], [120.0, 240.0])) + "\n{truncated")
    for given in (records, tmp_path / "missing.jsonl"):
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_methods.py"), str(given), str(tmp_path / "x.png")],
                              capture_output=True, text=True)
        assert done.returncode != 0
        assert len(done.stderr.strip().splitlines()) == 1 and str(given) in done.stderr
        assert not (tmp_path / "x.png").exists()


def test_plot_full_run_reads_epochs_on_smaller_images(tmp_path):
    """A console with low_res_epochs: the epochs' lines carry the size they trained on, and still count."""
    log = "\n".join([
        "teacher trees epoch 1/2  loss 1.457  train 42.2%  val 41.2% (trained on 16px images)  7.3 s  left 0:30",
        "teacher trees epoch 2/2  loss 1.262  train 53.4%  val 56.8% (trained on 32px images)  24.5 s  left 0:00",
        "merged 3 teachers into models/A/merged.pth in 60 s (alignment 10 s); validation accuracy before training "
        "58.5%, routing agreement 86.1%",
        "MoE A epoch 1/2  loss 2.278 (task 2.220)  train 45.7%  val 44.9% (trained on 16px images)  30.0 s  left 1:00",
        "MoE A epoch 2/2  loss 1.278 (task 1.220)  train 65.7%  val 64.9%  90.0 s  left 0:00",
        "Task A: 70.00% of 1500 test images right",
    ])
    curves, test, minutes = _script("plot_full_run").read_run(log)
    assert curves["teacher trees"] == [(7.3 / 60, 41.2, 16), ((7.3 + 24.5) / 60, 56.8, 32)]
    assert [(round(m, 4), v, px) for m, v, px in curves["MoE"]] == [
        (round(91.8 / 60, 4), 58.5, None), (round(121.8 / 60, 4), 44.9, 16), (round(211.8 / 60, 4), 64.9, None)]
    assert test == 70.0 and round(minutes, 4) == round(211.8 / 60, 4)
    assert _script("plot_full_run").task_name(log) == "A"  # the title's task: from the log, not the script
    log_file = tmp_path / "console.log"
    log_file.write_text(log)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_full_run.py"), str(log_file), str(tmp_path / "run.png"),
                    "--goal", "78.87"], check=True, capture_output=True)
    assert (tmp_path / "run.png").stat().st_size > 10_000


def test_plot_full_run_draws_a_baseline_run_beneath(tmp_path):
    """--baseline: a second console's curves and test star join the figure, named as --names says."""
    def console(test):
        return "\n".join([
            "merged 3 teachers into models/A/merged.pth in 90 s (alignment 10 s); validation accuracy before training "
            "58.5%, routing agreement 86.1%",
            "MoE A epoch 1/1  loss 1.278 (task 1.220)  train 65.7%  val 64.9%  90.0 s  left 0:00",
            f"Task A: {test}% of 1500 test images right"])
    (tmp_path / "new.log").write_text(console("71.00"))
    (tmp_path / "old.log").write_text(console("69.50"))
    module = _script("plot_full_run")
    import matplotlib.pyplot as plt
    saved = {}
    real_savefig = plt.Figure.savefig
    def keep_legend(fig, *args, **kwargs):
        saved["labels"] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        return real_savefig(fig, *args, **kwargs)
    plt.Figure.savefig = keep_legend
    argv = sys.argv
    try:
        sys.argv = ["plot_full_run.py", str(tmp_path / "new.log"), str(tmp_path / "cmp.png"),
                    "--baseline", str(tmp_path / "old.log"), "--names", "12 small", "8 small"]
        module.main()
    finally:
        plt.Figure.savefig, sys.argv = real_savefig, argv
    assert "12 small: MoE on the test set: 71.00%" in saved["labels"]
    assert "8 small on the test set: 69.50%" in saved["labels"]
    assert any(label.startswith("8 small: all curves, 3 min of epochs") for label in saved["labels"])
    assert (tmp_path / "cmp.png").stat().st_size > 10_000


def test_plot_full_run_names_a_missing_console_and_writes_nothing(tmp_path):
    (tmp_path / "new.log").write_text("Task A: 71.00% of 1500 test images right\n")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_full_run.py"), str(tmp_path / "new.log"),
                          str(tmp_path / "cmp.png"), "--baseline", str(tmp_path / "old.log")], capture_output=True, text=True)
    assert run.returncode == 2 and f"{tmp_path / 'old.log'}: no such console log" in run.stderr
    assert not (tmp_path / "cmp.png").exists()
