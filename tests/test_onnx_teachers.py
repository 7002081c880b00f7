"""Teachers of any architecture as ONNX files: the same answers as their .pth, the same distillation,
fresh experts where there are no weights to merge, one line for every bad file, and a task with an
MLP teacher through `dvc repro`."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from moe.base.data import normalize
from moe.base.errors import MoEError
from moe.base.params import load_params
from moe.base.tasks import parse_task, require_distillation
from moe.core.checkpoints import load_teacher, read_metadata
from moe.core.inference import predict
from moe.core.merge import merge_teachers
from moe.core.methods import objective_for
from moe.core.models import MoEModel, TeacherCNN
from moe.core.onnx_teachers import OnnxTeacher, export_teacher, load_onnx_teacher, write_with_metadata
from moe.core.teachers import _given_teacher

from .pipeline_repo import run
from .test_own_task import TEACHERS, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "task_a_teachers"


class TinyMLP(nn.Module):
    """Another architecture: flattened pixels of a ``side`` x ``side`` image, one hidden layer."""

    def __init__(self, num_classes: int, side: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * side * side, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.net(x)


def exported_fixtures(spec, folder: Path) -> tuple[list[Path], list[Path]]:
    """The three given Task A teachers, as .pth and exported to .onnx with their metadata."""
    pth = [FIXTURES / f"teacher_{i + 1}.pth" for i in range(3)]
    onnx = [folder / f"teacher_{i + 1}.onnx" for i in range(3)]
    for f, out, t in zip(pth, onnx, spec.teachers):
        meta = read_metadata(f)
        export_teacher(load_teacher(f, 5), spec.image_size, out, mean=meta["mean"], std=meta["std"],
                       class_ids=list(t.local_order), class_names=[spec.name_of(c) for c in t.local_order])
    return pth, onnx


def test_exported_teacher_gives_the_logits_of_its_pth(task_a, tmp_path):
    pth, onnx = exported_fixtures(task_a, tmp_path)
    meta = read_metadata(pth[0])
    images = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    original, _ = predict(load_teacher(pth[0], 5), images, meta["mean"], meta["std"])
    teacher = load_teacher(onnx[0], 5)
    assert isinstance(teacher, OnnxTeacher) and teacher.input_size == (32, 32)
    exported, _ = predict(teacher, images, meta["mean"], meta["std"])
    assert (exported - original).abs().max().item() <= 1e-4
    # what later stages read from the file: its normalisation, classes and names
    stated = read_metadata(onnx[0])
    assert stated["mean"] == pytest.approx(meta["mean"]) and stated["std"] == pytest.approx(meta["std"])
    assert stated["class_ids"] == [47, 52, 56, 59, 96] and stated["class_names"][0] == "maple_tree"
    # any batch size, and mirror-image averaging goes through the same path
    flipped, _ = predict(teacher, images[:7], meta["mean"], meta["std"], flip=True)
    assert flipped.shape == (7, 5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_model_of_another_input_size_gets_resized_images(tmp_path):
    torch.manual_seed(0)
    mlp = TinyMLP(3, side=16).eval()
    export_teacher(mlp, 16, tmp_path / "mlp.onnx", mean=[0.5] * 3, std=[0.25] * 3)
    teacher = load_onnx_teacher(tmp_path / "mlp.onnx", 3, image_size=32)
    x = torch.randn(4, 3, 32, 32)
    expected = mlp(F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=True))
    assert torch.allclose(teacher(x), expected, atol=1e-5)
    # exported for batches of exactly one image: it still answers a batch of four
    one_at_a_time = load_onnx_teacher(onnx_of(mlp, tmp_path / "one.onnx", torch.zeros(1, 3, 16, 16)), 3)
    assert one_at_a_time.fixed_batch == 1 and torch.allclose(one_at_a_time(x), expected, atol=1e-5)


def test_distillation_from_onnx_teachers_takes_the_same_steps(task_a, tmp_path):
    pth, onnx = exported_fixtures(task_a, tmp_path)
    p = load_params(ROOT / "params.yaml", {"method": "distill", "kd_weight": 1.0})
    mean, std = [0.5, 0.45, 0.4], [0.25, 0.25, 0.25]  # not the teachers': each input is renormalised for them
    g = torch.Generator().manual_seed(3)
    batches = [(normalize(torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g), mean, std),
                torch.randint(0, 15, (16,), generator=g)) for _ in range(3)]

    def losses(files, runtime="torch"):
        objective = objective_for("distill", {**p, "kd_teacher_runtime": runtime}, task_a, files, mean, std,
                                  torch.device("cpu"))
        assert all(isinstance(t, OnnxTeacher) == (runtime == "onnxruntime" or files == onnx) for t in objective.teachers)
        torch.manual_seed(0)
        student = MoEModel(15, 3).train()
        optimiser = torch.optim.AdamW(student.parameters(), lr=1e-3)
        objective.begin_epoch(student, 0, 1)
        out = []
        for x, y in batches:
            torch.manual_seed(1)  # the router's noise
            step = objective.step(student, x, y)
            optimiser.zero_grad()
            step.loss.backward()
            optimiser.step()
            out.append((step.loss.item(), step.terms["distillation"].item()))
        return torch.tensor(out)

    with_pth, with_onnx, pth_on_onnxruntime = losses(pth), losses(onnx), losses(pth, "onnxruntime")
    assert with_pth[:, 1].min() > 0.01  # the teachers do teach
    assert torch.allclose(with_onnx, with_pth, rtol=1e-4, atol=1e-5), (with_onnx, with_pth)
    # kd_teacher_runtime: the .pth teachers exported in memory and run by ONNX Runtime teach the same
    assert torch.allclose(pth_on_onnxruntime, with_pth, rtol=1e-4, atol=1e-5), (pth_on_onnxruntime, with_pth)


def test_an_onnx_teacher_has_a_fresh_expert_and_the_backbone_is_the_others_mean(task_a):
    torch.manual_seed(0)
    teachers = [TeacherCNN(5), TeacherCNN(5), TeacherCNN(5)]
    for t in teachers:
        for p in t.parameters():
            p.data.normal_()
    torch.manual_seed(7)
    merged = merge_teachers(task_a, [teachers[0], None, teachers[2]]).state_dict()
    torch.manual_seed(7)
    fresh = MoEModel(15, 3).state_dict()
    mean = (teachers[0].conv1.conv.weight + teachers[2].conv1.conv.weight) / 2
    assert torch.allclose(merged["feature_extractor.0.conv.weight"], mean, atol=1e-6)
    for key in (k for k in merged if k.startswith("experts.1.")):  # the ONNX teacher's expert
        assert torch.equal(merged[key], fresh[key]), key
    assert torch.equal(merged["experts.0.0.weight"], teachers[0].conv3[0].depthwise.weight)
    # classes only the ONNX teacher holds (flowers, rows 5-9) keep the fresh rows; the others come from heads
    assert torch.equal(merged["classifier.weight"][5:10], fresh["classifier.weight"][5:10])
    assert torch.allclose(merged["classifier.weight"][:5, :512], teachers[0].head.weight, atol=1e-6)
    # with no course-CNN teacher the model is the fresh one
    torch.manual_seed(7)
    alone = merge_teachers(task_a, [None, None, None]).state_dict()
    assert all(torch.equal(alone[k], fresh[k]) for k in fresh)


def onnx_of(model: nn.Module, path: Path, example: torch.Tensor) -> Path:
    torch.onnx.export(model.eval(), (example,), str(path), input_names=["x"], output_names=["y"], dynamo=False)  # batch fixed at 1
    return path


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bad_onnx_files_are_one_line_naming_the_file(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07this is not a model" * 10)
    wide = onnx_of(TeacherCNN(4), tmp_path / "wide.onnx", torch.zeros(1, 3, 32, 32))
    flat = onnx_of(nn.Linear(3072, 5), tmp_path / "flat.onnx", torch.zeros(1, 3072))
    gray = onnx_of(nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)),
                   tmp_path / "gray.onnx", torch.zeros(1, 1, 32, 32))
    for path, says in ((junk, "not an ONNX model"), (wide, "gives 4 outputs per image, but its teacher in the task "
                                                              "spec has 5 classes"),
                       (flat, "its input has 2 dimensions"), (gray, "its input has 1 channels"),
                       (tmp_path / "missing.onnx", "file not found")):
        with pytest.raises(MoEError) as caught:
            load_teacher(path, 5, 32)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and says in message and "\n" not in message, message
    with pytest.raises(MoEError, match="not an ONNX model"):
        read_metadata(junk)


def test_the_spec_names_onnx_teachers_and_the_rules_that_follow(tmp_path):
    def spec(**teacher):
        return parse_task({"name": "t", "image_size": 32, "classes": [{"id": i, "name": f"c{i}"} for i in range(4)],
                           "teachers": [{"name": "a", "classes": [0, 1], **teacher}, {"name": "b", "classes": [2, 3]}]})

    onnx = spec(onnx="inputs/a.onnx")
    assert onnx.teachers[0].onnx == "inputs/a.onnx" and onnx.onnx_teachers == ["a"]
    with pytest.raises(MoEError, match="not both"):
        spec(onnx="inputs/a.onnx", checkpoint="inputs/a.pth")
    with pytest.raises(MoEError, match="must name an .onnx file"):
        spec(onnx="inputs/a.pth")
    require_distillation(onnx, "distill")
    require_distillation(spec(), "moe")
    with pytest.raises(MoEError, match="params.yaml: method: moe cannot learn from task t's ONNX teacher 'a'"):
        require_distillation(onnx, "moe")

    # no normalisation in the file nor in the spec: one line that says what to add
    export_teacher(TinyMLP(2, side=32), 32, tmp_path / "a.onnx")
    with pytest.raises(MoEError, match="states no input normalisation"):
        _given_teacher(spec(onnx=str(tmp_path / "a.onnx")), 0, tmp_path)
    stated = spec(onnx=str(tmp_path / "a.onnx"), normalization={"mean": [0.5] * 3, "std": [0.2] * 3})
    _, origin, mean, std = _given_teacher(stated, 0, tmp_path)
    assert origin == str(tmp_path / "a.onnx") and mean == [0.5] * 3 and std == [0.2] * 3


def test_a_copy_states_metadata_and_keeps_the_rest(tmp_path):
    export_teacher(TinyMLP(2), 16, tmp_path / "a.onnx", mean=[0.1] * 3, std=[0.3] * 3, class_ids=[4, 9])
    write_with_metadata(tmp_path / "a.onnx", tmp_path / "b.onnx", mean=[0.2] * 3)
    assert read_metadata(tmp_path / "b.onnx") == {"mean": [0.2] * 3, "std": [0.3] * 3, "class_ids": [4, 9]}


def train_mlp(folder: Path, classes: list[str], side: int = 16, steps: int = 150) -> TinyMLP:
    """The user's own teacher: an MLP on the image folder's training PNGs of its classes."""
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted((folder / "train" / name).glob("*.png")):
            pixels = np.asarray(Image.open(f).convert("RGB").resize((side, side)))
            images.append(torch.from_numpy(pixels.copy()).permute(2, 0, 1))
            labels.append(label)
    x, y = normalize(torch.stack(images), [0.5] * 3, [0.25] * 3), torch.tensor(labels)
    torch.manual_seed(0)
    model = TinyMLP(len(classes), side)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()
    return model.eval()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_task_with_an_mlp_teacher_runs_through_dvc(tiny_demo):
    """An image-folder task whose 'given' teacher is an MLP of 16x16 inputs, exported by the user to ONNX
    (normalisation in the spec, not in the file), beside course-CNN teachers that pretrain trains."""
    repo, env, _ = tiny_demo
    inputs = repo / "inputs" / "fruit"
    write_image_folder(inputs / "images")
    mlp = train_mlp(inputs / "images", TEACHERS["given"])
    torch.onnx.export(mlp, (torch.zeros(1, 3, 16, 16),), str(inputs / "given.onnx"), input_names=["x"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)
    teacher_args = [a for t, cs in TEACHERS.items() for a in ("--teacher", f"{t}: {', '.join(cs)}")]
    made = run(["moe", "new-task", "fruit", "--images", "inputs/fruit/images", *teacher_args,
                "--onnx", "given: inputs/fruit/given.onnx", "--inputs", "inputs/fruit"], repo, env)
    assert made.returncode == 0 and "method=distill" in made.stdout + made.stderr, made.stderr
    spec_file = repo / "tasks" / "fruit.yaml"
    spec_file.write_text(spec_file.read_text().replace(
        "onnx: inputs/fruit/given.onnx", "onnx: inputs/fruit/given.onnx\n  normalization: {mean: [0.5, 0.5, 0.5], "
        "std: [0.25, 0.25, 0.25]}"))
    assert run(["dvc", "add", "inputs/fruit"], repo, env).returncode == 0

    # the default method cannot learn from it: moe check says why, before any stage runs
    refused = run(["dvc", "repro", "--glob", "*@fruit"], repo, env)
    assert refused.returncode != 0
    assert "method: moe cannot learn from task fruit's ONNX teacher 'given'" in refused.stdout + refused.stderr
    assert not (repo / "data" / "fruit").exists()

    params = repo / "params.yaml"
    params.write_text(re.sub(r"(?m)^method: moe\b", "method: distill", params.read_text()))
    result = run(["dvc", "repro", "--glob", "*@fruit"], repo, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    said = " ".join((result.stdout + result.stderr).split())  # the console wraps long lines
    assert "ONNX teachers given teach by distillation only" in said
    assert "given.onnx takes 16x16 images; task fruit's 32x32 images are resized for it" in said
    assert (repo / "models" / "fruit" / "teachers" / "teacher_4.onnx").is_file()
    teachers = json.loads((repo / "metrics" / "fruit_teachers.json").read_text())
    assert teachers["given"] >= 75.0, teachers  # its own two classes: chance 50 %
    origins = json.loads((repo / "plots" / "fruit" / "teacher_origins.json").read_text())
    assert origins["given"] == "inputs/fruit/given.onnx" and origins["orchard"] == "trained"
    metrics = json.loads((repo / "metrics" / "fruit.json").read_text())
    print(f"own task with an ONNX teacher, distilled: test accuracy {metrics['accuracy']:.1f}%")
    assert metrics["accuracy"] >= 50.0, metrics  # chance: 16.7 %
    baselines = json.loads((repo / "metrics" / "fruit_baselines.json").read_text())["test_accuracy"]
    assert baselines["teacher ensemble"] > 16.7 and baselines["oracle (not deployable)"] > 30, baselines

    # a course-CNN teacher exported by `moe export-teacher` answers like its .pth
    exported = run(["moe", "export-teacher", "--task", "fruit", "--teacher", "orchard", "--out", "orchard.onnx"],
                   repo, env)
    assert exported.returncode == 0, exported.stderr
    assert read_metadata(repo / "orchard.onnx")["class_names"] == ["apple", "banana", "cherry"]
    pth = repo / "models" / "fruit" / "teachers" / "teacher_1.pth"
    meta = read_metadata(pth)
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)  # the task's size
    a, _ = predict(load_teacher(pth, 3), images, meta["mean"], meta["std"])
    b, _ = predict(load_teacher(repo / "orchard.onnx", 3), images, meta["mean"], meta["std"])
    assert (a - b).abs().max().item() <= 1e-4

    # a file that is not ONNX: one line naming it, and pretrain writes nothing
    (inputs / "given.onnx").write_bytes(b"not a model")
    broken = run(["moe", "pretrain", "--task", "fruit"], repo, env)
    assert broken.returncode == 1 and broken.stderr.strip().count("\n") == 0, broken.stderr
    assert "inputs/fruit/given.onnx: not an ONNX model" in broken.stderr
    assert (repo / "models" / "fruit" / "teachers" / "teacher_4.onnx").read_bytes() != b"not a model"
