"""Reading the archive's files exactly, and refusing hostile or broken input with one clear line."""

import os
import pickle
import random
import zipfile

import numpy as np
import pytest
import torch

from moe.base.data import load_task_split, load_teacher_split
from moe.base.errors import MoEError
from moe.base.formats import read_split, safe_load, save_torch, write_split
from moe.core.checkpoints import load_moe, load_teacher
from moe.core.models import MoEModel, TeacherCNN
from moe.sources.demo import generate_demo_archive
from moe.sources.fetching import extract_task

from .conftest import ROOT


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pth"
    torch.save({"data": RunsCode(marker)}, bad, _use_new_zipfile_serialization=True, pickle_module=pickle)
    with pytest.raises(MoEError, match="evil.pth: refused"):
        safe_load(bad)
    assert not marker.exists()


def test_numpy_task_a_layout_loads_with_allowlist(tmp_path, task_a):
    imgs = torch.randint(0, 255, (10, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([47, 52, 56, 59, 96] * 2)
    path = tmp_path / "a.pth"
    write_split(path, imgs, labels, "numpy", indices=list(range(100, 110)))
    raw = safe_load(path)
    assert isinstance(raw["data"], np.ndarray) and raw["data"].shape == (10, 32, 32, 3)
    assert raw["labels"] == labels.tolist() and raw["indices"] == list(range(100, 110))
    images, ids = read_split(path, 32, [47, 52, 56, 59, 96])
    assert torch.equal(images, imgs) and torch.equal(ids, labels)


def test_list_of_arrays_is_accepted(tmp_path):
    arrays = [np.full((32, 32, 3), i, np.uint8) for i in range(3)]
    torch.save({"data": arrays, "labels": [1, 2, 1], "indices": [0, 1, 2]}, tmp_path / "l.pth")
    images, ids = read_split(tmp_path / "l.pth", 32, [1, 2])
    assert images.shape == (3, 3, 32, 32) and images[2].float().mean().item() == 2


@pytest.mark.parametrize("payload, message", [
    ({"images": torch.zeros(2, 32, 32, 3, dtype=torch.uint8), "labels": [1, 1]}, "expected a dict with keys"),
    ({"data": torch.zeros(2, 28, 28, 3, dtype=torch.uint8), "labels": [1, 1]}, "shape"),
    ({"data": torch.zeros(2, 32, 32, 3, dtype=torch.float32), "labels": [1, 1]}, "dtype"),
    ({"data": torch.zeros(2, 32, 32, 3, dtype=torch.uint8), "labels": [1, 7]}, "not in this file's class table"),
    ({"data": torch.zeros(2, 32, 32, 3, dtype=torch.uint8), "labels": [1]}, "1 labels for 2 images"),
])
def test_bad_split_files_name_the_file(tmp_path, payload, message):
    path = tmp_path / "split.pth"
    torch.save(payload, path)
    with pytest.raises(MoEError, match=message) as e:
        read_split(path, 32, [1, 2])
    assert str(path) in str(e.value)


def test_truncated_and_missing_files(tmp_path):
    path = tmp_path / "t.pth"
    save_torch({"data": torch.zeros(100, 32, 32, 3, dtype=torch.uint8)}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(MoEError) as e:
        safe_load(path)
    # a whole sentence, not an internal message cut off at some length
    assert str(e.value) == (f"{path}: not a readable PyTorch file: its zip archive ends early "
                            "(an interrupted download or copy?)")
    with pytest.raises(MoEError, match="nothere.pth: file not found"):
        safe_load(tmp_path / "nothere.pth")


@pytest.mark.parametrize("content, message", [
    (b"junk\n", "not a PyTorch checkpoint (the file is neither"),
    (bytes(range(256)), "not a PyTorch checkpoint (the file is neither"),
    (bytes([7]) + random.Random(0).randbytes(4095), "not a PyTorch checkpoint (the file is neither"),
    (b"\x80\x02}q\x00.", "not a PyTorch checkpoint (a pickle that torch.save did not write"),
    (b"PK\x03\x04garbage", "not a readable PyTorch file: its zip archive ends early"),
])
def test_arbitrary_bytes_give_one_line_not_a_traceback(tmp_path, content, message):
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(MoEError) as e:
        safe_load(path)
    assert str(e.value).startswith(f"{path}: {message}") and "\n" not in str(e.value)
    assert str(e.value).count("(") == str(e.value).count(")")  # nothing cut off mid-parenthesis


def test_shared_class_taken_once_from_lowest_teacher(tmp_path, task_b):
    generate_demo_archive(task_b, tmp_path, train_per_class=4, test_per_class=2, seed=1)
    merged = load_task_split(task_b, tmp_path, "test")
    assert len(merged) == 12 * 2 and torch.equal(torch.bincount(merged.labels), torch.full((12,), 2))
    t2 = load_teacher_split(task_b, tmp_path, 1, "test")  # teacher 2 holds hyena too
    assert len(t2) == 5 * 2 and set(t2.labels.tolist()) == set(range(5))


def test_checkpoint_of_wrong_architecture_or_class_count(tmp_path, task_a):
    save_torch({"model_state_dict": TeacherCNN(4).state_dict()}, tmp_path / "t4.pth")
    with pytest.raises(MoEError, match=r"t4.pth: classifier.3.weight has shape \(4, 512\), expected \(5, 512\)"):
        load_teacher(tmp_path / "t4.pth", 5)
    save_torch(TeacherCNN(5).state_dict(), tmp_path / "bare.pth")
    assert isinstance(load_teacher(tmp_path / "bare.pth", 5), TeacherCNN)
    save_torch(MoEModel(15, 2).state_dict(), tmp_path / "moe2.pth")
    with pytest.raises(MoEError, match="moe2.pth: not a 15-class, 3-expert MoE"):
        load_moe(tmp_path / "moe2.pth", task_a)
    save_torch({"model_state_dict": {"conv1.weight": torch.zeros(3)}}, tmp_path / "other.pth")
    with pytest.raises(MoEError, match="other.pth: not a 5-class teacher checkpoint"):
        load_teacher(tmp_path / "other.pth", 5)


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"target")
            else:
                zf.writestr(name, data)


def _demo_members(tmp_path, spec):
    src = tmp_path / "src"
    generate_demo_archive(spec, src, 2, 1, 0)
    return {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*.pth")}


@pytest.mark.parametrize("evil, why", [("../escape.pth", "outside the target folder"), ("/etc/evil.pth", "absolute path")])
def test_zip_slip_is_refused_and_nothing_written(tmp_path, task_a, evil, why):
    members = _demo_members(tmp_path, task_a)
    members[evil] = b"x"
    _zip(tmp_path / "a.zip", members)
    out = tmp_path / "out"
    with pytest.raises(MoEError, match=why):
        extract_task(tmp_path / "a.zip", task_a, out)
    assert not out.exists() and not (tmp_path / "escape.pth").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_symlink_member_is_refused(tmp_path, task_a):
    members = _demo_members(tmp_path, task_a)
    link = zipfile.ZipInfo("data/TaskA/link")
    link.external_attr = (0o120777 << 16)
    members["data/TaskA/link"] = link
    _zip(tmp_path / "l.zip", members)
    with pytest.raises(MoEError, match="symbolic link"):
        extract_task(tmp_path / "l.zip", task_a, tmp_path / "out")


def test_macos_junk_dropped_and_nested_root_found(tmp_path, task_a):
    members = {f"cas771/{k}": v for k, v in _demo_members(tmp_path, task_a).items()}
    members["__MACOSX/cas771/data/._x.pth"] = b"junk"
    members["cas771/data/TaskA/._model1.pth"] = b"junk"
    _zip(tmp_path / "m.zip", members)
    written = extract_task(tmp_path / "m.zip", task_a, tmp_path / "out")
    assert len(written) == 6 and not list((tmp_path / "out").rglob("._*"))


def test_broken_archives(tmp_path, task_a):
    (tmp_path / "not.zip").write_bytes(b"this is not a zip")
    with pytest.raises(MoEError, match="not.zip: not a readable zip"):
        extract_task(tmp_path / "not.zip", task_a, tmp_path / "o")
    members = _demo_members(tmp_path, task_a)
    members.pop(sorted(members)[0])
    _zip(tmp_path / "short.zip", members)
    with pytest.raises(MoEError, match="short.zip: missing expected file"):
        extract_task(tmp_path / "short.zip", task_a, tmp_path / "o")
    with pytest.raises(MoEError, match="archive not found"):
        extract_task(tmp_path / "absent.zip", task_a, tmp_path / "o")


def test_failed_write_leaves_previous_output_untouched(tmp_path):
    from moe.base.formats import atomic_path, save_json
    target = tmp_path / "metrics.json"
    save_json({"accuracy": 90.0}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"accuracy": ')
            raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "accuracy": 90.0\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_predictions_file_of_wrong_shape_or_kind_names_the_file(tmp_path):
    from moe.results.evaluation import load_predictions, save_predictions

    good = {"logits": torch.zeros(4, 6), "gates": torch.full((4, 3), 1 / 3), "expert_logits": torch.zeros(4, 3, 6)}
    save_predictions(good, torch.arange(4), tmp_path / "ok.pth")
    assert load_predictions(tmp_path / "ok.pth", 3, 6)["labels"].tolist() == [0, 1, 2, 3]
    with pytest.raises(MoEError, match=r"ok\.pth: 'logits' has shape \(4, 6\), expected \(4, 5\)"):
        load_predictions(tmp_path / "ok.pth", 3, 5)
    with pytest.raises(MoEError, match=r"missing\.pth: file not found$"):  # the library names no command
        load_predictions(tmp_path / "missing.pth", 3, 6)
    save_torch({"logits": [1, 2]}, tmp_path / "junk.pth")
    with pytest.raises(MoEError, match=r"junk\.pth: not a predictions file"):
        load_predictions(tmp_path / "junk.pth", 3, 6)


def test_stage_adds_which_command_makes_a_missing_input(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from stages.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["analyze", "--task", str(ROOT / "tasks" / "A.yaml")])
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == ("error: predictions/A.pth: file not found (evaluate writes it: run "
                                               "`moe evaluate --task A` or `dvc repro` first)")
