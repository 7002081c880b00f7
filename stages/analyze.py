"""analyze: which expert serves which class, and how each expert does alone."""

import typer
from rich.table import Table

from moe.base.formats import build_folder, load_json, save_json
from moe.results.analysis import analyse_routing
from moe.results.evaluation import load_predictions
from moe.results.plots import heatmap

from .common import TASK_OPTION, Paths, console, heading, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("analyze")
@stage
def analyze_command(task: str = TASK_OPTION):
    """Expert contribution per class (mean gate), expert accuracy with forced routing, routing summary.

    Reads the test predictions that evaluate wrote (predictions/TASK.pth), so the test set is run once."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    routing = analyse_routing(spec, load_predictions(paths.predictions, spec.num_experts, spec.num_classes))
    summary = routing.summary  # DVC metrics: the two headline figures; the rest is in expert_tables.json
    save_json({k: summary[k] for k in ("routing_agreement", "routing_entropy")}, paths.routing_metrics)
    save_json(routing.tables, paths.expert_tables)
    experts = [f"{i + 1} {t.name}" for i, t in enumerate(spec.teachers)]
    heatmap(routing.contribution, experts, spec.class_names, f"{heading(spec)}: mean gate weight per class (test set)",
            paths.expert_contribution, vmax=1.0)
    heatmap(routing.forced_accuracy, experts, spec.class_names,
            f"{heading(spec)}: accuracy (%) with all weight on one expert (test set)",
            paths.expert_accuracy, fmt="{:.0f}", vmax=100.0, cmap="magma")

    table = Table(title=f"{heading(spec)}: routing on the test set")
    for col in ("expert", "utilisation", "classes it leads"):
        table.add_column(col)
    for i, t in enumerate(spec.teachers):
        table.add_row(experts[i], f"{summary['utilisation'][t.name]:.2f}", ", ".join(routing.leads[t.name]) or "-")
    console.print(table)
    snapshots = load_json(paths.gate_snapshots)  # written by train, every expert_analysis_interval epochs

    def draw_snapshots(folder):  # the whole folder at once: no heatmap of an earlier run stays behind
        for epoch, matrix in snapshots.items():
            heatmap([list(row.values()) for row in matrix.values()], list(matrix), spec.class_names,
                    f"{heading(spec)}: mean gate weight per class (validation), {epoch}",
                    folder / f"contribution_epoch_{int(epoch.split()[1]):03d}.png", vmax=1.0)

    build_folder(paths.analysis, draw_snapshots)
    say(f"routing agreement {summary['routing_agreement']:.1f}%, entropy {summary['routing_entropy']:.2f}, "
        f"dead experts: {', '.join(summary['dead_experts']) or 'none'}")
