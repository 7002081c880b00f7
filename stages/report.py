"""report: one Markdown page per task from the metrics and plots of evaluate and analyze; and summary,
the closing table of the demo."""

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from moe.base.errors import MoEError
from moe.base.formats import load_json, save_text
from moe.results.report import summary_rows, task_report

from .common import TASK_OPTION, Paths, data_source, heading, say, stage, stdout, task_spec

app = typer.Typer(add_completion=False)


def headline_results(task: str) -> dict:
    """The figures of summary's row, from files in git: a clone without the data or models has them."""
    paths = Paths(task)
    return {"metrics": load_json(paths.test_metrics), "routing": load_json(paths.routing_metrics),
            "teachers": load_json(paths.teacher_metrics), "merge": load_json(paths.merge_metrics),
            "demo": data_source(task) == "demo"}


def task_results(task: str) -> dict:
    """Everything the stages wrote about one task's results (all of it in git too)."""
    paths = Paths(task)
    return {**headline_results(task), "per_class": load_json(paths.per_class), "tables": load_json(paths.expert_tables),
            "origins": load_json(paths.teacher_origins)}


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
    results = {}
    for name in names:
        try:
            results[name] = headline_results(name)
        except MoEError as e:  # e.g. a task whose pipeline has not run yet
            say(f"summary: task {name} skipped: {e}")
    if not results:
        raise MoEError("metrics/: no task has results yet (run dvc repro, or dvc repro --glob \"*@TASK\" for one task)")
    rows = summary_rows(results)
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
        stdout.print("demo: generated shapes with the tasks' class names, not real images (docs/usage.md: real data)")
