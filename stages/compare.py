"""compare: the trained MoE against what needs no training: the merged model before training, the
teachers' ensemble and the routing oracle, on the same test images."""

from pathlib import Path

import typer
from rich.table import Table

from moe.base.data import load_task_split
from moe.base.formats import save_json
from moe.core.baselines import teacher_baselines
from moe.core.inference import accuracy
from moe.results.evaluation import accuracy_on, load_predictions
from moe.results.plots import method_bars

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, heading, reads, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("compare")
@stage
@reads("method", "tta_flip", "tta_shift")
def compare_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Test accuracy of the trained MoE (from evaluate's predictions), the merged model (both with
    `tta_flip` and `tta_shift` as set), the teachers' ensemble and the oracle."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    trained = load_predictions(paths.predictions, spec.num_experts, spec.num_classes)
    test = load_task_split(spec, paths.data, "test")
    baselines = teacher_baselines(spec, paths.teacher_files(spec), test.images, test.labels)
    result = {p["method"]: round(100.0 * accuracy(trained["logits"], trained["labels"]), 2),
              "merged, untrained": accuracy_on(spec, paths.merged, test, p["tta_flip"], p["tta_shift"]),
              "teacher ensemble": baselines["ensemble"], "oracle (not deployable)": baselines["oracle"]}
    save_json({"test_accuracy": result, "images": len(test)}, paths.baseline_metrics)
    method_bars(result, f"{heading(spec)}: test accuracy by method ({len(test)} images)", paths.baselines)
    table = Table(title=f"{heading(spec)}: test accuracy (%)", title_justify="left")
    table.add_column("method")
    table.add_column("accuracy", justify="right")
    for name, acc in result.items():
        table.add_row(name, f"{acc:.1f}")
    console.print(table)
    say(f"written {paths.baseline_metrics} and {paths.baselines}")
