"""What a person sees at the command line: help with ranges and defaults, fast top-level help,
predict's rows on stdout, a line per epoch that survives piping."""

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from moe.base.tasks import load_task
from moe.core.checkpoints import save_model
from moe.core.models import MoEModel
from stages.cli import app

from .conftest import ROOT


def test_top_level_help_imports_no_torch():
    code = ("import sys; from typer.testing import CliRunner; from stages.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0 and 'pretrain' in r.output; "
            "assert 'torch' not in sys.modules, 'moe --help imported torch'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_option_help_shows_range_and_value_in_force(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # params.yaml here gives the values in force
    result = CliRunner().invoke(app, ["train", "--help"], terminal_width=200)
    text = " ".join(result.output.replace("│", " ").split())
    assert "learning rate for the optimizer (original default 0.001) [> 0; params.yaml: lr]" in text
    assert "[default: (0.002)]" in text  # the shipped params.yaml's lr
    assert "--diversity-weight" in text and "[>= 0; params.yaml: diversity_weight]" in text


def test_option_overrides_params_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    result = CliRunner().invoke(app, ["fetch", "--task", str(ROOT / "tasks" / "A.yaml"), "--demo-train-per-class", "2"])
    assert result.exit_code == 1 and "parameter 'demo.train_per_class' = 2 is out of range (>= 4)" in result.output


def test_yes_no_option_overrides_params_file_both_ways(monkeypatch):
    """A yes/no parameter set in params.yaml can be turned off for one command (--no-NAME), and on."""
    monkeypatch.chdir(ROOT)
    text = " ".join(CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=200).output.replace("│", " ").split())
    assert "--tta-flip --no-tta-flip" in text and "[yes or no; params.yaml: tta_flip]" in text
    seen = []

    def stop_at_evaluation(spec, checkpoint, data, seed, flip, shift):
        seen.append(flip)
        raise KeyboardInterrupt  # the options are parsed; nothing is evaluated

    monkeypatch.setattr("stages.evaluate.evaluate_model", stop_at_evaluation)
    for args, flip in ((["--no-tta-flip"], False), (["--tta-flip"], True)):
        seen.clear()
        CliRunner().invoke(app, ["evaluate", "--task", "A", *args])
        assert seen == [flip]


def test_predict_rows_on_stdout_and_a_bad_file_does_not_stop_the_others(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_task(ROOT / "tasks" / "A.yaml")
    torch.manual_seed(0)
    model_path = tmp_path / "moe.pth"
    save_model(model_path, MoEModel(15, 3), [0.5] * 3, [0.25] * 3, spec.class_ids, spec.class_names)
    Image.new("RGB", (50, 40), (200, 30, 30)).save(tmp_path / "red.png")
    Image.new("RGB", (32, 32), (30, 200, 30)).save(tmp_path / "green.jpg")
    (tmp_path / "broken.png").write_text("not an image")
    args = ["predict", "red.png", "broken.png", "green.jpg", "--task", str(ROOT / "tasks" / "A.yaml"),
            "--params", str(ROOT / "params.yaml"), "--checkpoint", str(model_path)]

    result = CliRunner().invoke(app, args + ["--json"])
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [r["image"] for r in rows] == ["red.png", "broken.png", "green.jpg"]
    assert "broken.png: not a readable image" in rows[1]["error"] and "broken.png" in result.stderr
    for r in (rows[0], rows[2]):
        assert len(r["top"]) == 3 and abs(sum(r["gates"].values()) - 1) < 1e-3
        assert set(r["gates"]) == {"trees", "flowers", "fruit_and_vegetables"}

    table = CliRunner().invoke(app, args, terminal_width=120)
    assert "red.png" in table.stdout and "green.jpg" in table.stdout and "error" not in table.stdout


def test_predict_warns_when_the_model_learnt_from_demo_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_task(ROOT / "tasks" / "A.yaml")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "A_data.json").write_text('{"source": "demo", "classes": 15, "test_images": 300}')
    save_model(tmp_path / "models" / "A" / "merged_moe.pth", MoEModel(15, 3), [0.5] * 3, [0.25] * 3, spec.class_ids,
               spec.class_names)
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "photo.png")
    result = CliRunner().invoke(app, ["predict", "photo.png", "--task", str(ROOT / "tasks" / "A.yaml"),
                                      "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert "trained on demo data" in " ".join(result.stderr.split()) and "photo.png" in result.stdout
    assert "(demo data)" in result.stdout


def test_too_small_a_batch_for_the_processes_is_one_line_before_any_process_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    result = CliRunner().invoke(app, ["train", "--task", str(ROOT / "tasks" / "A.yaml"), "--processes", "3",
                                      "--batch-size", "5"])
    assert result.exit_code == 1
    assert result.output.count("batch_size 5 gives some of the 3 processes fewer than two images per step") == 1
    assert "torchrun" not in result.output and not (tmp_path / "models").exists()
    result = CliRunner().invoke(app, ["pretrain", "--task", str(ROOT / "tasks" / "A.yaml"), "--processes", "2",
                                      "--teacher-batch-size", "3"])
    assert result.exit_code == 1 and "teacher.batch_size 3 gives some of the 2 processes" in result.output


def test_predict_table_fits_80_columns_with_eight_experts_and_long_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [f"a_rather_long_class_name_number_{i}" for i in range(16)]
    teachers = "\n".join(f"  - {{name: expert_with_a_long_name_{t}, classes: [{2 * t}, {2 * t + 1}]}}"
                         for t in range(8))
    (tmp_path / "mine.yaml").write_text(
        "name: mine\nimage_size: 32\ndata_format: numpy\nclasses:\n"
        + "".join(f"  - {{id: {i}, name: {n}}}\n" for i, n in enumerate(names)) + f"teachers:\n{teachers}\n")
    spec = load_task(tmp_path / "mine.yaml")
    torch.manual_seed(0)
    save_model(tmp_path / "moe.pth", MoEModel(16, 8), [0.5] * 3, [0.25] * 3, spec.class_ids, spec.class_names)
    files = [f"photo_taken_on_a_long_walk_{i}.png" for i in range(3)]
    for i, f in enumerate(files):
        Image.new("RGB", (40, 30), (60 * i, 200, 30)).save(tmp_path / f)
    result = CliRunner().invoke(app, ["predict", *files, "--task", "mine.yaml", "--params", str(ROOT / "params.yaml"),
                                      "--checkpoint", "moe.pth"], terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 80, result.stdout
    rows = [line for line in lines if line.startswith("photo_")]
    assert len(rows) == 3  # one line per image
    gates = json.loads(CliRunner().invoke(app, ["predict", *files, "--task", "mine.yaml", "--params",
                                                str(ROOT / "params.yaml"), "--checkpoint", "moe.pth", "--json"]).stdout)
    for row, record in zip(rows, gates):
        shown = [float(g) for g in row.split()[-8:]]  # every expert's gate, two decimals, in expert order
        assert shown == pytest.approx(list(record["gates"].values()), abs=0.006)
        assert record["top"][0]["class"].startswith(row.split()[1].rstrip("…"))
    assert "8=expert_with_a_long_name_7" in result.stdout


def test_epoch_line_counts_the_time_of_the_runs_still_to_come(monkeypatch, capsys):
    """pretrain's line after a teacher's epoch: the time left for this teacher and for those after it."""
    from stages import console

    clock = iter([100.0, 110.0])  # the epoch starts at 100 s and ends at 110 s
    monkeypatch.setattr(console.time, "perf_counter", lambda: next(clock))
    progress = console.RichProgress("teacher a", runs_after=2)
    progress.start_epoch(0, 3, 5, [32, 32, 32])
    progress.end_epoch({"epoch": 1, "train_loss": 1.5, "train_accuracy": 40.0, "val_accuracy": 35.0})
    # two more epochs of this teacher and three of each of the two after it, at 10 s an epoch
    assert capsys.readouterr().err.strip().endswith("10.0 s  left 1:20")


def test_time_left_after_a_small_image_epoch_counts_the_full_size_epochs_at_full_cost(monkeypatch, capsys):
    """low_res_epochs: an epoch on 16px images does a quarter of a 32px epoch's work; the estimate of
    what is left must not take the full-size epochs to be as quick."""
    from stages import console

    clock = iter([100.0, 110.0])  # a 16px epoch in 10 s: a 32px one should take about 40 s
    monkeypatch.setattr(console.time, "perf_counter", lambda: next(clock))
    progress = console.RichProgress("moe")
    progress.start_epoch(0, 3, 5, [16, 32, 32])
    progress.end_epoch({"epoch": 1, "train_loss": 1.5, "train_accuracy": 40.0, "val_accuracy": 35.0,
                        "image_size": 16})
    assert capsys.readouterr().err.strip().endswith("(trained on 16px images)  10.0 s  left 1:20")
