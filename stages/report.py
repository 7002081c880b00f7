"""report: one Markdown page per task from the metrics and plots of evaluate and analyze."""

import json
from pathlib import Path

import typer

from moe.errors import MoEError
from moe.formats import save_text
from moe.report import task_report

from .common import TASK_OPTION, Paths, say, stage, task_spec

app = typer.Typer(add_completion=False)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise MoEError(f"{path}: not found (run evaluate and analyze first)")
    return json.loads(path.read_text())


@app.command("report")
@stage
def report_command(task: str = TASK_OPTION, out_dir: Path = typer.Option(Path("reports"), help="folder for the page")):
    """Write reports/TASK.md: tables and pictures of one task's results."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    page = task_report(spec.name, _read(paths.metrics / f"{spec.name}.json"),
                       _read(paths.metrics / f"{spec.name}_routing.json"),
                       _read(paths.metrics / f"{spec.name}_teachers.json"),
                       _read(paths.metrics / f"{spec.name}_merge.json"),
                       _read(paths.plots / "expert_tables.json"),
                       plots_rel=f"../{paths.plots.as_posix()}")
    target = out_dir / f"{spec.name}.md"
    save_text(page, target)
    say(f"written {target}")
