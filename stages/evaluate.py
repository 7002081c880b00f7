"""evaluate: overall and per-class test accuracy, confusion matrix, learning curves, sample predictions."""

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from moe.checkpoints import load_moe, read_metadata
from moe.evaluation import (accuracy_report, confusion_matrix, evaluation_set, predict_with_experts, prediction_rows,
                            sample_indices, save_predictions)
from moe.formats import save_json
from moe.plots import learning_curves, per_class_bars, sample_grid

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, params, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("evaluate")
@stage
def evaluate_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION,
                     checkpoint: Optional[Path] = typer.Option(None, help="evaluate this MoE checkpoint (e.g. a released "
                                                               "best model) instead of the pipeline's; outputs go to --out"),
                     out: Optional[Path] = typer.Option(None, help="folder for outputs when --checkpoint is given")):
    """Test the trained MoE once, on the held-out test set."""
    if checkpoint and out is None:
        raise typer.BadParameter("--out is required with --checkpoint", param_hint="--out")
    spec = task_spec(task)
    p = params(params_file)
    paths = Paths(spec.name)
    model_path = checkpoint or paths.model(p["model_name"])
    model = load_moe(model_path, spec)
    test, mean, std, protocol = evaluation_set(spec, model_path, paths.data)
    predictions = predict_with_experts(model, test.images, mean, std)
    logits, gates = predictions["logits"], predictions["gates"]
    report = accuracy_report(spec, logits, test.labels)

    metrics_file = (out / "metrics.json") if checkpoint else paths.metrics / f"{spec.name}.json"
    plot_dir = out if checkpoint else paths.plots
    save_json(report, metrics_file)
    save_predictions(predictions, test.labels, plot_dir / "test_predictions.pth" if checkpoint else paths.predictions)
    cm = confusion_matrix(spec.num_classes, logits, test.labels)
    pairs = [{"actual": spec.class_names[a], "predicted": spec.class_names[b]}
             for a in range(spec.num_classes) for b in range(spec.num_classes) for _ in range(int(cm[a, b]))]
    save_json(pairs, plot_dir / "confusion.json")
    per_class_bars(report["per_class"], f"Task {spec.name}: test accuracy per class ({report['accuracy']:.1f}% overall)",
                   plot_dir / "per_class_accuracy.png")
    history = read_metadata(model_path).get("history")
    if history:
        learning_curves(history, f"Task {spec.name}: training", plot_dir / "learning_curves.png")
    idx = sample_indices(test.labels, min(10, spec.num_classes), 1, p["seed"])
    rows = prediction_rows(spec, test, logits, gates, idx)
    sample_grid(test.images[idx], rows, [t.name for t in spec.teachers],
                f"Task {spec.name}: sample test predictions", plot_dir / "sample_predictions.png")

    table = Table(title=f"Task {spec.name}: {report['accuracy']:.2f}% on {report['images']} test images")
    table.add_column("class")
    table.add_column("accuracy", justify="right")
    for name, acc in report["per_class"].items():
        table.add_row(name, f"{acc:.1f}%")
    console.print(table)
    console.print(f"evaluated as {protocol}, gating temperature {model.temperature:g}")
    console.print(f"written {metrics_file} and plots in {plot_dir}")
