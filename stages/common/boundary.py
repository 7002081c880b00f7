"""The edge between a stage and the person running it: a fault is one red line and exit 1."""

from __future__ import annotations

import functools
from pathlib import Path

import typer
from rich.markup import escape

from moe.base.errors import MissingFile, MoEError

from ..console import RichProgress, console
from .paths import Paths


def _hint(error: MoEError) -> str:
    """Which command makes a missing input, when it is one of the pipeline's own files."""
    if isinstance(error, MissingFile):
        parts = Path(error.path).parts
        task = Path(parts[1]).stem if len(parts) > 1 else ""
        producer = Paths(task).producer(Path(error.path)) if task else None
        if producer == "variant":
            return (f" (the comparison writes it: run `moe variant --task {task} --name {Path(error.path).stem}` "
                    "or `dvc repro comparison/dvc.yaml` first)")
        if producer:
            return f" ({producer} writes it: run `moe {producer} --task {task}` or `dvc repro` first)"
    return ""


def stage(fn):
    """Turn MoEError into one red line and exit 1; Ctrl-C into a short note and exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MoEError as e:
            # one line whatever the width, and a file name with [brackets] is not taken for markup
            console.print(f"[bold red]error:[/] {escape(str(e) + _hint(e))}", soft_wrap=True)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            for bar in list(RichProgress.active):
                bar.stop()
            console.print("[yellow]interrupted[/]: the last finished epoch is saved; run the same command "
                          "(or dvc repro) again to resume")
            raise typer.Exit(130)

    return wrapper
