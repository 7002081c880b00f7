"""report: one Markdown page per task from the metrics and plots of evaluate and analyze; and summary,
the closing table of the demo."""

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from moe.base.data import data_origin
from moe.base.errors import MissingFile, MoEError
from moe.base.formats import save_text
from moe.results.report import summary_rows, task_report

from .common import TASK_OPTION, Paths, heading, say, stage, stdout, task_spec

app = typer.Typer(add_completion=False)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise MissingFile(path)
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise MoEError(f"{path}: not valid JSON ({e})") from None


def task_results(task: str) -> dict:
    """Everything the stages wrote about one task's results."""
    paths = Paths(task)
    return {"metrics": _read(paths.test_metrics), "per_class": _read(paths.per_class),
            "routing": _read(paths.routing_metrics), "tables": _read(paths.expert_tables),
            "teachers": _read(paths.teacher_metrics), "origins": _read(paths.teacher_origins),
            "merge": _read(paths.merge_metrics), "demo": data_origin(paths.data) == "demo"}


@app.command("report")
@stage
def report_command(task: str = TASK_OPTION, out_dir: Path = typer.Option(Path("reports"), help="folder for the page")):
    """Write reports/TASK.md: tables and pictures of one task's results."""
    spec = task_spec(task)
    page = task_report(heading(spec), task_results(spec.name), plots_rel=f"../{Paths(spec.name).plots.as_posix()}")
    target = out_dir / f"{spec.name}.md"
    save_text(page, target)
    say(f"written {target}")


@app.command("summary")
@stage
def summary_command(tasks: Optional[List[str]] = typer.Argument(None, help="task names (default: every task with "
                                                                "results under metrics/)")):
    """The headline figures of every task in one table that fits 80 columns (all in percent)."""
    names = tasks or sorted(p.name[:-len("_routing.json")] for p in Paths("").metrics.glob("*_routing.json"))
    if not names:
        raise MoEError("metrics/: no results yet (run dvc repro first)")
    rows = summary_rows({name: task_results(name) for name in names})
    table = Table(title="Results, accuracy in %", title_justify="left",
                  caption="teachers: each on its own classes' test images; merged: validation right after the "
                          "merge; MoE: the trained model on the test set (images); routing: share of test images "
                          "whose top expert is a teacher of their class", caption_justify="left")
    for col in rows[0]:
        table.add_column(col, justify="left" if col in ("task", "teachers") else "right")
    for r in rows:
        table.add_row(*[f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()])
    stdout.print(table)
    if any(r["task"].endswith("(demo)") for r in rows):
        stdout.print("demo: generated shapes with the tasks' class names, not real images (see README, Real data)")
