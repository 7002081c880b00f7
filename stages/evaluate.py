"""evaluate: overall and per-class test accuracy, confusion matrix, learning curves, sample predictions."""

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from moe.evaluation import evaluate_model, save_predictions
from moe.formats import save_json
from moe.plots import learning_curves, per_class_bars, sample_grid

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, reads, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("evaluate")
@stage
@reads("model_name", "seed")
def evaluate_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION,
                     checkpoint: Optional[Path] = typer.Option(None, help="evaluate this MoE checkpoint (e.g. a released "
                                                               "best model) instead of the pipeline's; outputs go to --out"),
                     out: Optional[Path] = typer.Option(None, help="folder for outputs when --checkpoint is given"),
                     *, p: dict):
    """Test the trained MoE once, on the held-out test set."""
    if checkpoint and out is None:
        raise typer.BadParameter("--out is required with --checkpoint", param_hint="--out")
    spec = task_spec(task)
    paths = Paths(spec.name)
    result = evaluate_model(spec, checkpoint or paths.model(p["model_name"]), paths.data, p["seed"])
    metrics_file = (out / "metrics.json") if checkpoint else paths.metrics / f"{spec.name}.json"
    plot_dir = out if checkpoint else paths.plots
    report = result.report

    save_json(report, metrics_file)
    save_predictions(result.predictions, result.test.labels, plot_dir / "test_predictions.pth" if checkpoint else paths.predictions)
    save_json(result.confusion, plot_dir / "confusion.json")
    per_class_bars(report["per_class"], f"Task {spec.name}: test accuracy per class ({report['accuracy']:.1f}% overall)",
                   plot_dir / "per_class_accuracy.png")
    if result.history:
        learning_curves(result.history, f"Task {spec.name}: training", plot_dir / "learning_curves.png")
    sample_grid(result.test.images[result.samples], result.sample_rows, [t.name for t in spec.teachers],
                f"Task {spec.name}: sample test predictions", plot_dir / "sample_predictions.png")

    table = Table(title=f"Task {spec.name}: {report['accuracy']:.2f}% on {report['images']} test images")
    table.add_column("class")
    table.add_column("accuracy", justify="right")
    for name, acc in report["per_class"].items():
        table.add_row(name, f"{acc:.1f}%")
    console.print(table)
    console.print(f"evaluated as {result.protocol}, gating temperature {result.temperature:g}")
    console.print(f"written {metrics_file} and plots in {plot_dir}")
