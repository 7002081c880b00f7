"""variant, comparison: every method and ablation on the same teachers and splits (comparison/dvc.yaml).

`moe variant --task A --name distill` trains one variant of params.yaml's `comparison.variants` and
writes runs/A/distill.json; `moe comparison --task A` puts every variant beside the untrained
baselines in metrics/compare_A.json, plots/A/comparison.png and plots/A/comparison.csv.
"""

from pathlib import Path

import typer
from rich.table import Table

from moe.baselines import teacher_baselines
from moe.comparison import comparison_summary, curve_rows, time_to_accuracy, train_variant, variant_params
from moe.data import load_task_split, prepare_task_data
from moe.errors import MoEError
from moe.formats import load_json, save_csv, save_json
from moe.merge import MergeSettings
from moe.methods import TRAIN_PARAMS
from moe.objectives import DistillObjective
from moe.params import param_names
from moe.plots import comparison_plot
from moe.runtime import pick_device, resolve_precision
from moe.training import TrainConfig

from .common import (PARAMS_OPTION, TASK_OPTION, Paths, RichProgress, console, heading, reads, say, stage,
                     task_spec)

app = typer.Typer(add_completion=False)
NAME_OPTION = typer.Option(..., "--name", "-n", help="the variant's name in params.yaml comparison.variants")


@app.command("variant")
@stage
@reads("comparison.variants", "method", *param_names(MergeSettings), *param_names(TrainConfig),
       *param_names(DistillObjective), *TRAIN_PARAMS)
def variant_command(task: str = TASK_OPTION, name: str = NAME_OPTION, params_file: Path = PARAMS_OPTION, *,
                    p: dict):
    """Train one variant from the task's teachers (or from random weights) and test it once."""
    variants = p["comparison.variants"]
    if name not in variants:
        raise MoEError(f"{params_file}: no comparison variant '{name}' (variants: {', '.join(variants)})")
    spec = task_spec(task)
    paths = Paths(spec.name)
    q = variant_params(p, variants[name])
    device = pick_device()
    data = prepare_task_data(spec, paths.data, q["val_fraction"], q["seed"], q["max_train_per_class"])
    test = load_task_split(spec, paths.data, "test")
    changes = ", ".join(f"{k}={v}" for k, v in variants[name].items()) or "params.yaml as it is"
    say(f"variant {name} ({changes}) on task {spec.name}: {len(data.train)} training images, {q['num_epochs']} epochs")
    record = train_variant(spec, data, test, [paths.teacher(i) for i in range(spec.num_experts)], q, device,
                           resolve_precision(q["precision"], device), checkpoint=paths.variant_state(name),
                           progress=RichProgress(f"{name} {spec.name}"), say=say)
    save_json({"variant": name, "changes": variants[name], **record}, paths.run(name))
    paths.variant_state(name).unlink(missing_ok=True)
    say(f"variant {name}: test accuracy {record['test_accuracy']:.2f}% after {record['train_seconds']:.0f} s of "
        f"training ({record['images_seen']} images seen); written {paths.run(name)}")


@app.command("comparison")
@stage
@reads("comparison.variants")
def comparison_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Collect every variant's record and measure the teachers' ensemble and the oracle."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    runs = {name: load_json(paths.run(name)) for name in p["comparison.variants"]}
    test = load_task_split(spec, paths.data, "test")
    found = teacher_baselines(spec, [paths.teacher(i) for i in range(spec.num_experts)], test.images, test.labels)
    summary = comparison_summary(runs, {"teacher ensemble": found["ensemble"], "oracle (not deployable)": found["oracle"]},
                                 len(test))
    summary["seconds_to_moe_best_val"] = time_to_accuracy(runs)
    save_json(summary, paths.metrics / f"compare_{spec.name}.json")
    save_csv(curve_rows(runs), paths.plots / "comparison.csv")
    comparison_plot(summary["test_accuracy"], runs, f"{heading(spec)}: methods and ablations ({len(test)} test images)",
                    paths.plots / "comparison.png")

    table = Table(title=f"{heading(spec)}: test accuracy on {len(test)} images", title_justify="left")
    for column in ("method", "test %", "train s", "images seen", "best epoch"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for method, acc in summary["test_accuracy"].items():
        run = runs.get(method)
        table.add_row(method, f"{acc:.2f}", *((f"{run['train_seconds']:.0f}", f"{run['images_seen']:,}", str(run["best_epoch"]))
                                              if run else ("-", "-", "-")))
    console.print(table)
    say(f"written {paths.metrics / ('compare_' + spec.name + '.json')}, {paths.plots / 'comparison.png'}")
