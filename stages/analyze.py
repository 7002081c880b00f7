"""analyze: which expert serves which class, and how each expert does alone."""

import typer
from rich.table import Table

from moe.analysis import analyse_routing
from moe.evaluation import load_predictions
from moe.formats import save_json
from moe.plots import heatmap

from .common import TASK_OPTION, Paths, console, heading, stage, task_spec

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
    save_json({k: summary[k] for k in ("routing_agreement", "routing_entropy")}, paths.metrics / f"{spec.name}_routing.json")
    save_json(routing.tables, paths.plots / "expert_tables.json")
    experts = [f"{i + 1} {t.name}" for i, t in enumerate(spec.teachers)]
    heatmap(routing.contribution, experts, spec.class_names, f"{heading(spec)}: mean gate weight per class (test set)",
            paths.plots / "expert_contribution.png", vmax=1.0)
    heatmap(routing.forced_accuracy, experts, spec.class_names,
            f"{heading(spec)}: accuracy (%) with all weight on one expert (test set)",
            paths.plots / "expert_accuracy.png", fmt="{:.0f}", vmax=100.0, cmap="magma")

    table = Table(title=f"{heading(spec)}: routing on the test set")
    for col in ("expert", "utilisation", "classes it leads"):
        table.add_column(col)
    for i, t in enumerate(spec.teachers):
        table.add_row(experts[i], f"{summary['utilisation'][t.name]:.2f}", ", ".join(routing.leads[t.name]) or "-")
    console.print(table)
    console.print(f"routing agreement {summary['routing_agreement']:.1f}%, entropy {summary['routing_entropy']:.2f}, "
                  f"dead experts: {', '.join(summary['dead_experts']) or 'none'}")
