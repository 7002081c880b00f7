"""analyze: which expert serves which class, and how each expert does alone."""

from pathlib import Path

import typer
from rich.table import Table

from moe.analysis import forced_expert_accuracy, gate_contribution, routing_summary
from moe.checkpoints import load_moe, normalisation_of
from moe.data import load_task_split
from moe.formats import save_json
from moe.plots import heatmap
from moe.training import predict

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, params, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("analyze")
@stage
def analyze_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION):
    """Expert contribution per class (mean gate), expert accuracy with forced routing, routing summary."""
    spec = task_spec(task)
    p = params(params_file)
    paths = Paths(spec.name)
    model_path = paths.model(p["model_name"])
    model = load_moe(model_path, spec)
    mean, std = normalisation_of(model_path, spec)
    test = load_task_split(spec, paths.data, "test")
    _, gates = predict(model, test.images, mean, std)
    contribution = gate_contribution(gates, test.labels, spec.num_classes)
    forced = forced_expert_accuracy(model, test.images, test.labels, mean, std, spec.num_classes)
    summary = routing_summary(spec, gates, test.labels)
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
