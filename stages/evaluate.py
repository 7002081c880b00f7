"""evaluate: overall and per-class test accuracy, confusion matrix, learning curves, sample predictions."""

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from moe.base.formats import save_json
from moe.results.evaluation import confusion_matrix, evaluate_model, save_predictions
from moe.results.plots import heatmap, learning_curves, per_class_bars, sample_grid

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, heading, reads, say, stage, task_spec

app = typer.Typer(add_completion=False)


def views_said(p: dict) -> str:
    """The test-time views evaluate averaged over, in words (nothing when each image is seen once)."""
    views = (["its mirror image (tta_flip)"] if p["tta_flip"] else []) + \
        ([f"copies moved {p['tta_shift']} px up-left and down-right (tta_shift)"] if p["tta_shift"] else [])
    return f", each image averaged with {' and '.join(views)}" if views else ""


@app.command("evaluate")
@stage
@reads("model_name", "seed", "tta_flip", "tta_shift")
def evaluate_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION,
                     checkpoint: Optional[Path] = typer.Option(None, help="evaluate this MoE checkpoint (e.g. a released "
                                                               "best model) instead of the pipeline's; outputs go to --out"),
                     out: Optional[Path] = typer.Option(None, help="folder for outputs when --checkpoint is given"),
                     *, p: dict):
    """Test the trained MoE once, on the held-out test set."""
    if checkpoint and out is None:
        raise typer.BadParameter("--out is required with --checkpoint", param_hint="--out")
    spec = task_spec(task)
    paths = Paths(spec.name, p["model_name"])
    result = evaluate_model(spec, checkpoint or paths.model, paths.data, p["seed"], p["tta_flip"],
                            p["tta_shift"])
    report, title = result.report, heading(spec)
    if checkpoint:  # one file with everything, beside the plots
        plot_dir = out
        save_json(report, out / "metrics.json")
        save_predictions(result.predictions, result.test.labels, out / "test_predictions.pth")
    else:  # DVC metrics stay a few numbers; the per-class figures are a plot's data
        plot_dir = paths.plots
        save_json({"accuracy": report["accuracy"], "images": report["images"]}, paths.test_metrics)
        save_json(report["per_class"], paths.per_class)
        save_predictions(result.predictions, result.test.labels, paths.predictions)
    heatmap(confusion_matrix(spec.num_classes, result.predictions["logits"], result.test.labels), spec.class_names,
            spec.class_names, f"{title}: confusion matrix, test set (images)", plot_dir / paths.confusion.name,
            fmt="{:.0f}", cmap="Blues", xlabel="predicted class", ylabel="true class", separators=spec.group_bounds(),
            hide_zero=True)
    per_class_bars(report["per_class"], f"{title}: test accuracy per class ({report['accuracy']:.1f}% overall)",
                   plot_dir / paths.per_class_accuracy.name)
    if result.history:
        learning_curves(result.history, [t.name for t in spec.teachers], f"{title}: training",
                        plot_dir / paths.learning_curves.name)
    sample_grid(result.test.images[result.samples], result.sample_rows, [t.name for t in spec.teachers],
                f"{title}: sample test predictions", plot_dir / paths.sample_predictions.name)

    table = Table(title=f"{title}: {report['accuracy']:.2f}% of {report['images']} test images")
    table.add_column("class")
    table.add_column("accuracy", justify="right")
    for name, acc in report["per_class"].items():
        table.add_row(name, f"{acc:.1f}%")
    console.print(table)
    say(f"evaluated as {result.protocol}, gating temperature {result.temperature:g}{views_said(p)}")
    say(f"written {out / 'metrics.json' if checkpoint else paths.test_metrics} "
        f"and plots in {plot_dir}")
