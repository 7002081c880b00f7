"""comparison: every variant of the comparison (comparison/dvc.yaml) beside the untrained baselines.

`moe comparison --task A` reads the variants' records (runs/A/*.json, written by `moe variant`) and
writes metrics/compare_A.json, plots/A/comparison.png and plots/A/comparison.csv.
"""

from pathlib import Path

import typer
from rich.table import Table

from moe.base.data import load_task_split
from moe.base.formats import load_json, save_csv, save_json
from moe.core.baselines import teacher_baselines
from moe.results.comparison import comparison_summary, curve_rows, merge_verdict, time_to_accuracy, verdict_line
from moe.results.plots import comparison_plot

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, heading, reads, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("comparison")
@stage
@reads("comparison.variants")
def comparison_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Collect every variant's record and measure the teachers' ensemble and the oracle."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    runs = {name: load_json(paths.run(name)) for name in p["comparison.variants"]}
    test = load_task_split(spec, paths.data, "test")
    found = teacher_baselines(spec, paths.teacher_files(spec), test.images, test.labels)
    summary = comparison_summary(runs, {"teacher ensemble": found["ensemble"], "oracle (not deployable)": found["oracle"]},
                                 len(test))
    summary["seconds_to_moe_best_val"] = time_to_accuracy(runs)
    verdict = merge_verdict(runs)
    if verdict:
        summary["merge_verdict"] = verdict
    save_json(summary, paths.comparison_metrics)
    save_csv(curve_rows(runs), paths.comparison_curve)
    comparison_plot(summary["test_accuracy"], runs, f"{heading(spec)}: methods and ablations ({len(test)} test images)",
                    paths.comparison_plot)

    table = Table(title=f"{heading(spec)}: test accuracy on {len(test)} images", title_justify="left")
    for column in ("method", "test %", "train s", "images seen", "best epoch"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for method, acc in summary["test_accuracy"].items():
        run = runs.get(method)
        seconds = f"{run['train_seconds']:.0f}{'*' if run.get('contended') else ''}" if run else "-"
        table.add_row(method, f"{acc:.2f}", seconds, *((f"{run['images_seen']:,}", str(run["best_epoch"]))
                                                       if run else ("-", "-")))
    console.print(table)
    if summary["contended"]:
        say("* timed while other work shared the CPU (load above the core count): those seconds are not the "
            "variant's alone")
    if verdict:
        say(verdict_line(verdict))
    say(f"written {paths.comparison_metrics}, {paths.comparison_plot}")
