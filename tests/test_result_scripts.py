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
