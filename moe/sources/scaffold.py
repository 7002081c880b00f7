"""A task spec from an image folder: classes from its folder names, teachers from lists of them."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..base.errors import MoEError
from ..base.params import NAME_PATTERN
from ..base.tasks import parse_task


def task_from_image_folder(name: str, images: str | Path, teachers: dict[str, list[str]], image_size: int,
                           checkpoints: dict[str, str] | None = None, onnx: dict[str, str] | None = None) -> dict:
    """The spec as a mapping (checked by ``parse_task``): class ids 0..n-1 in sorted folder-name order.
    ``checkpoints`` and ``onnx``: teacher name -> its file (a course-CNN .pth, or any classifier as ONNX)."""
    if not NAME_PATTERN.match(name):
        raise MoEError(f"task name '{name}' must be letters, digits, '_' or '-'")
    train = Path(images) / "train"
    if not train.is_dir():
        raise MoEError(f"{train}: folder not found (an image folder holds train/<class>/ and test/<class>/)")
    names = sorted(p.name for p in train.iterdir() if p.is_dir())
    if not names:
        raise MoEError(f"{train}: no class folders")
    ids = {n: i for i, n in enumerate(names)}
    spec = {"name": name, "image_size": image_size, "source": "image_folder", "images": str(images),
            "classes": [{"id": ids[n], "name": n} for n in names], "teachers": []}
    for teacher, classes in teachers.items():
        unknown = [c for c in classes if c not in ids]
        if unknown:
            raise MoEError(f"teacher '{teacher}': no class folder '{unknown[0]}' in {train} (there are: {', '.join(names)})")
        entry = {"name": teacher, "classes": [ids[c] for c in classes]}
        for key, files in (("checkpoint", checkpoints or {}), ("onnx", onnx or {})):
            if teacher in files:
                entry[key] = files[teacher]
        spec["teachers"].append(entry)
    for option, files in (("--checkpoint", checkpoints or {}), ("--onnx", onnx or {})):
        unknown = set(files) - set(teachers)
        if unknown:
            raise MoEError(f"{option} names teacher '{sorted(unknown)[0]}', which is not among the teachers")
    parse_task(spec, f"task {name}")
    return spec


def spec_yaml(spec: dict) -> str:
    head = (f"# Task {spec['name']}: written by `moe new-task`; edit freely (`moe check` validates it).\n"
            "# A teacher given as a checkpoint or an ONNX file may state the normalisation it was trained with\n"
            "# (an ONNX file may state it in its metadata instead):\n"
            "#   normalization: {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}\n")
    return head + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=110)


def add_to_task_list(params_text: str, name: str, inputs: str) -> str:
    """params.yaml's text with ``name: inputs`` added under ``tasks:``, comments and layout kept."""
    lines = params_text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "tasks:")
    except StopIteration:
        raise MoEError("params.yaml: no 'tasks:' block to add the task to") from None
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        if lines[end].strip().split(":")[0] == name:
            raise MoEError(f"params.yaml: task '{name}' is already listed under 'tasks:'")
        end += 1
    return "".join(lines[:end] + [f"  {name}: {inputs}\n"] + lines[end:])
