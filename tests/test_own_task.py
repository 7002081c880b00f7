"""A task of one's own, the documented way: an image folder and a trained teacher under inputs/,
`moe new-task`, `dvc add`, `dvc repro`. Four teachers with overlapping classes, PNGs of mixed sizes."""

import json

import torch
from PIL import Image

from moe.base.tasks import parse_task
from moe.core.checkpoints import save_model
from moe.core.models import TeacherCNN
from moe.sources.demo import class_attributes, render_class

from .pipeline_repo import run

CLASSES = ["apple", "banana", "cherry", "date", "elder", "fig"]
TEACHERS = {"orchard": ["apple", "banana", "cherry"], "market": ["cherry", "date"],
            "garden": ["date", "elder", "fig"], "given": ["apple", "fig"]}


def write_image_folder(root, per_class={"train": 16, "test": 8}):
    """Generated shapes saved as PNGs of three sizes; class c looks like the demo's class c."""
    spec = parse_task({"name": "x", "image_size": 40, "classes": [{"id": i, "name": n} for i, n in enumerate(CLASSES)],
                       "teachers": [{"name": t, "classes": [CLASSES.index(c) for c in cs]} for t, cs in TEACHERS.items()]})
    attrs = class_attributes(spec, seed=4)
    for part, n in per_class.items():
        for c, name in enumerate(CLASSES):
            images = render_class(attrs[c], n, 40, torch.Generator().manual_seed(c * 10 + (part == "test")))
            (root / part / name).mkdir(parents=True)
            for k, image in enumerate(images):
                size = (24, 32, 40)[k % 3]
                Image.fromarray(image.permute(1, 2, 0).numpy()).resize((size, size)).save(root / part / name / f"{k:03d}.png")


def test_own_image_folder_task_through_dvc(tiny_demo):
    repo, env, _ = tiny_demo  # A and B after dvc repro, before the new task exists

    inputs = repo / "inputs" / "fruit"
    write_image_folder(inputs / "images")
    torch.manual_seed(0)
    save_model(inputs / "given.pth", TeacherCNN(2), [0.45, 0.45, 0.45], [0.3, 0.3, 0.3], [0, 5], ["apple", "fig"])
    teacher_args = [a for t, cs in TEACHERS.items() for a in ("--teacher", f"{t}: {', '.join(cs)}")]
    made = run(["moe", "new-task", "fruit", "--images", "inputs/fruit/images", *teacher_args,
                "--checkpoint", "given: inputs/fruit/given.pth", "--inputs", "inputs/fruit"], repo, env)
    assert made.returncode == 0, made.stderr
    assert "fruit: inputs/fruit" in (repo / "params.yaml").read_text()
    assert run(["dvc", "add", "inputs/fruit"], repo, env).returncode == 0

    result = run(["dvc", "repro"], repo, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "were resized" in result.stderr  # the PNGs of other sizes, said once per split
    for stage in ("fetch", "pretrain", "merge", "train", "evaluate"):  # A and B were up to date: untouched
        assert f"Running stage '{stage}@A'" not in result.stdout and f"Running stage '{stage}@B'" not in result.stdout

    metrics = json.loads((repo / "metrics" / "fruit.json").read_text())
    print(f"own image-folder task: test accuracy {metrics['accuracy']:.1f}% on {metrics['images']} images")
    assert metrics["images"] == 6 * 8 and metrics["accuracy"] >= 50.0, metrics  # chance: 16.7 %
    assert list(json.loads((repo / "plots" / "fruit" / "per_class.json").read_text())) == CLASSES
    tables = json.loads((repo / "plots" / "fruit" / "expert_tables.json").read_text())
    assert list(tables["utilisation"]) == list(TEACHERS)
    origins = json.loads((repo / "plots" / "fruit" / "teacher_origins.json").read_text())
    assert origins["given"] == "inputs/fruit/given.pth" and origins["orchard"] == "trained"
    assert "# Task fruit" in (repo / "reports" / "fruit.md").read_text()
    assert "up to date" in run(["dvc", "status", "dvc.yaml"], repo, env).stdout.lower()

    # DVC sees the user's images: changing one reruns the task from fetch
    Image.new("RGB", (32, 32), (0, 0, 0)).save(inputs / "images" / "train" / "fig" / "000.png")
    status = run(["dvc", "status", "dvc.yaml"], repo, env).stdout
    assert "fetch@fruit" in status and "fetch@A" not in status
