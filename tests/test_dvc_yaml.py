"""dvc.yaml tells the truth: every module a stage's command imports, directly or not, is among its
deps (so an edit anywhere in that code reruns the stage), and its params are exactly those the
stage declares with ``@reads`` (so -S changes rerun exactly what they affect)."""

import ast
import importlib
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

from moe.base.params import SCHEMA
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


# display only: nothing in it changes an output, so no stage depends on it (a progress-bar edit reruns nothing)
DISPLAY_ONLY = {ROOT / "stages" / "console.py"}


def code_deps(files: set[Path]) -> set[str]:
    """The dvc.yaml code deps that cover ``files``: a subpackage (moe/core, stages/common, ...) as one folder,
    a top-level module as its file; display-only modules left out."""
    deps = set()
    for f in files - DISPLAY_ONLY:
        rel = f.relative_to(ROOT)
        deps.add(rel.parent.as_posix() if len(rel.parts) > 2 else rel.as_posix())
    return deps


def stage_code(stage: dict) -> set[str]:
    return code_deps(closure(ROOT / "stages" / "cli.py") | closure(ROOT / "stages" / f"{stage_module(stage)}.py"))


@pytest.mark.parametrize("name", sorted(PIPELINE))
def test_code_deps_are_exactly_what_the_stage_imports(name):
    """Nothing missing (an edit anywhere in that code reruns the stage) and nothing extra (an edit
    elsewhere does not)."""
    stage = PIPELINE[name]
    listed = {d for d in body(stage).get("deps", []) if d.split("/")[0] in ("moe", "stages")}
    assert listed == stage_code(stage), f"dvc.yaml stage '{name}': code deps should be {sorted(stage_code(stage))}"


def test_plots_and_training_do_not_depend_on_each_other():
    """A cosmetic edit to the figures (moe/results) never reruns the teachers, the merge or training."""
    for name in ("pretrain", "merge", "train", "comparison/variant"):
        assert "moe/results" not in stage_code(PIPELINE[name]), name
        assert "stages/console.py" not in body(PIPELINE[name])["deps"], name


@pytest.mark.parametrize("name", sorted(PIPELINE))
def test_params_are_exactly_what_the_stage_reads(name):
    stage = PIPELINE[name]
    command = importlib.import_module(f"stages.{stage_module(stage)}")
    declared = next(getattr(c.callback, "reads", ()) for c in command.app.registered_commands
                    if c.name == stage_command(stage))
    # a comparison variant depends on its own entry only: comparison.variants.${key}; a group (merge,
    # teacher) stands for every parameter in it, so a new merge.* parameter needs no edit here
    listed = []
    for entry in (name.removesuffix(".${key}") for name in body(stage).get("params", [])):
        group = [k for k in SCHEMA if k.startswith(entry + ".")]
        listed.extend(group if entry not in SCHEMA and group else [entry])
    assert sorted(listed) == sorted(declared)


def test_the_check_finds_an_indirect_import():
    # train imports moe.core.training, which imports moe.core.inference: the closure must see it
    assert ROOT / "moe" / "core" / "inference.py" in closure(ROOT / "stages" / "train.py")
    assert ROOT / "moe" / "__init__.py" in closure(ROOT / "stages" / "train.py")


def test_every_stage_waits_for_the_params_check():
    for name, stage in PIPELINE.items():
        if name != "check":
            assert "checked/params.txt" in body(stage)["deps"], name


def declared_outputs(stage: dict) -> set[str]:
    return {o if isinstance(o, str) else next(iter(o)) for kind in ("outs", "metrics", "plots")
            for o in body(stage).get(kind, [])}


def test_outputs_are_exactly_what_paths_names():
    """Every file a stage writes is named once, in stages/common/paths.py; dvc.yaml says the same."""
    from stages.common.paths import Paths

    main, comparison = Paths("${key}", "${model_name}").outputs(), Paths("${comparison.task}").outputs()
    for name, stage in PIPELINE.items():
        expected = (comparison if name.startswith("comparison/") else main)[name]
        assert declared_outputs(stage) == {p.as_posix() for p in expected}, name


def test_a_variant_may_change_what_the_variant_stage_reads_except_the_data():
    from moe.base.params import VARIANT_KEYS

    stage = PIPELINE["comparison/variant"]
    command = importlib.import_module(f"stages.{stage_module(stage)}")
    reads = next(c.callback.reads for c in command.app.registered_commands if c.name == "variant")
    assert VARIANT_KEYS == set(reads) - {"comparison.variants", "max_train_per_class", "val_fraction"}
