"""dvc.yaml tells the truth: every module a stage's command imports, directly or not, is among its
deps (so an edit anywhere in that code reruns the stage), and its params are exactly those the
stage declares with ``@reads`` (so -S changes rerun exactly what they affect)."""

import ast
import importlib
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

from stages.cli import MODULE_OF

# both pipelines: the main one and the comparison (whose stages run from the root: wdir ..)
PIPELINE = {**yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"],
            **{f"comparison/{k}": v for k, v in yaml.safe_load((ROOT / "comparison" / "dvc.yaml").read_text())["stages"].items()}}


def module_file(name: str) -> Path | None:
    """The project's file for a dotted module name, or None for anything outside moe/ and stages/."""
    if name.split(".")[0] not in ("moe", "stages"):
        return None
    path = ROOT.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports_of(path: Path) -> set[Path]:
    """Project files ``path`` imports anywhere in it (function-level imports too), packages' __init__ included."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c imports a/__init__, a/b/__init__ and a/b/c
                f = module_file(".".join(parts[:i]))
                if f is not None and f.exists():
                    found.add(f)
    return found


def closure(entry: Path) -> set[Path]:
    seen, todo = set(), [entry]
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(imports_of(f))
    return seen


def body(stage: dict) -> dict:
    return stage.get("do", stage)  # a foreach stage's definition is under "do"


def stage_command(stage: dict) -> str:
    return body(stage)["cmd"].split()[1]  # "moe <command> --task ${item}"


def stage_module(stage: dict) -> str:
    command = stage_command(stage)
    return MODULE_OF.get(command, command)


@pytest.mark.parametrize("name", sorted(PIPELINE))
def test_every_imported_module_is_a_dep(name):
    stage = PIPELINE[name]
    needed = closure(ROOT / "stages" / "cli.py") | closure(ROOT / "stages" / f"{stage_module(stage)}.py")
    deps = [ROOT / d for d in body(stage).get("deps", [])]
    missing = sorted(str(f.relative_to(ROOT)) for f in needed
                     if not any(f == d or d in f.parents for d in deps))
    assert not missing, f"dvc.yaml stage '{name}' imports {missing} but does not list them as deps"


@pytest.mark.parametrize("name", sorted(PIPELINE))
def test_params_are_exactly_what_the_stage_reads(name):
    stage = PIPELINE[name]
    command = importlib.import_module(f"stages.{stage_module(stage)}")
    declared = next(getattr(c.callback, "reads", ()) for c in command.app.registered_commands
                    if c.name == stage_command(stage))
    # a comparison variant depends on its own entry only: comparison.variants.${key}
    listed = [name.removesuffix(".${key}") for name in body(stage).get("params", [])]
    assert sorted(listed) == sorted(declared)


def test_the_check_finds_an_indirect_import():
    # train imports moe.training, which imports moe.inference: the closure must see it
    assert ROOT / "moe" / "inference.py" in closure(ROOT / "stages" / "train.py")
    assert ROOT / "moe" / "__init__.py" in closure(ROOT / "stages" / "train.py")


def test_every_stage_waits_for_the_params_check():
    for name, stage in PIPELINE.items():
        if name != "check":
            assert "checked/params.txt" in body(stage)["deps"], name
