"""analyze: which expert serves which class, and how each expert does alone."""

import typer
from rich.table import Table

from moe.analysis import forced_expert_accuracy, gate_contribution, routing_summary
from moe.evaluation import load_predictions
from moe.formats import save_json
from moe.plots import heatmap

from .common import TASK_OPTION, Paths, console, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("analyze")
@stage
def analyze_command(task: str = TASK_OPTION):
    """Expert contribution per class (mean gate), expert accuracy with forced routing, routing summary.

    Reads the test predictions that evaluate wrote (predictions/TASK.pth), so the test set is run once."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    predictions = load_predictions(paths.predictions, spec.num_experts, spec.num_classes)
    gates, labels = predictions["gates"], predictions["labels"]
    contribution = gate_contribution(gates, labels, spec.num_classes)
    forced = forced_expert_accuracy(predictions["expert_logits"], labels, spec.num_classes)
    summary = routing_summary(spec, gates, labels)
    save_json(summary, paths.metrics / f"{spec.name}_routing.json")
    tables = {"contribution": {t.name: dict(zip(spec.class_names, [round(v, 4) for v in contribution[i].tolist()]))
                               for i, t in enumerate(spec.teachers)},
              "expert_accuracy": {t.name: dict(zip(spec.class_names, [round(v, 2) for v in forced[i].tolist()]))
                                  for i, t in enumerate(spec.teachers)}}
    save_json(tables, paths.plots / "expert_tables.json")
    experts = [f"{i + 1} {t.name}" for i, t in enumerate(spec.teachers)]
    heatmap(contribution, experts, spec.class_names, f"Task {spec.name}: mean gate weight per class",
            paths.plots / "expert_contribution.png", vmax=1.0)
    heatmap(forced, experts, spec.class_names, f"Task {spec.name}: accuracy (%) with all weight on one expert",
            paths.plots / "expert_accuracy.png", fmt="{:.0f}", vmax=100.0, cmap="magma")

    table = Table(title=f"Task {spec.name}: routing")
    for col in ("expert", "utilisation", "classes it leads"):
        table.add_column(col)
    for i, t in enumerate(spec.teachers):
        leads = [spec.class_names[c] for c in range(spec.num_classes) if contribution[:, c].argmax() == i]
        table.add_row(experts[i], f"{summary['utilisation'][t.name]:.2f}", ", ".join(leads) or "-")
    console.print(table)
    console.print(f"routing agreement {summary['routing_agreement']:.1%}, entropy {summary['routing_entropy']:.2f}, "
                  f"dead experts: {', '.join(summary['dead_experts']) or 'none'}")
