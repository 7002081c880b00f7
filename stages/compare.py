"""compare: the trained MoE against what needs no training: the merged model before training, the
teachers' ensemble and the routing oracle, on the same test images."""

from pathlib import Path

import typer
from rich.table import Table

from moe.baselines import compare_without_training, teachers_on
from moe.checkpoints import load_teacher, read_metadata
from moe.evaluation import evaluate_model
from moe.formats import save_json
from moe.plots import method_bars

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, heading, reads, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("compare")
@stage
@reads("model_name", "seed", "method")
def compare_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Test accuracy of the trained MoE, the merged model, the teachers' ensemble and the oracle."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    trained = evaluate_model(spec, paths.model(p["model_name"]), paths.data, p["seed"])
    merged = evaluate_model(spec, paths.merged, paths.data, p["seed"])
    files = [paths.teacher(i) for i in range(spec.num_experts)]
    teachers = [load_teacher(f, len(t.class_ids)) for f, t in zip(files, spec.teachers)]
    norms = [(read_metadata(f)["mean"], read_metadata(f)["std"]) for f in files]
    labels = trained.test.labels
    baselines = compare_without_training(spec, teachers_on(spec, teachers, norms, trained.test.images), labels)
    result = {p["method"]: trained.report["accuracy"], "merged, untrained": merged.report["accuracy"],
              "teacher ensemble": baselines["ensemble"], "oracle (not deployable)": baselines["oracle"]}
    save_json({"test_accuracy": result, "images": len(labels)}, paths.metrics / f"compare_{spec.name}.json")
    method_bars(result, f"{heading(spec)}: test accuracy by method ({len(labels)} images)", paths.plots / "compare.png")
    table = Table(title=f"{heading(spec)}: test accuracy (%)", title_justify="left")
    table.add_column("method")
    table.add_column("accuracy", justify="right")
    for name, acc in result.items():
        table.add_row(name, f"{acc:.1f}")
    console.print(table)
    console.print(f"written {paths.metrics / ('compare_' + spec.name + '.json')} and {paths.plots / 'compare.png'}")
