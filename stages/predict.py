"""predict: classify image files with a trained MoE and show which experts it asked."""

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from moe.core.checkpoints import load_moe
from moe.core.inference import classify_files
from moe.core.runtime import pick_device
from moe.results.evaluation import input_normalisation

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, data_source, reads, stage, stdout, task_spec

app = typer.Typer(add_completion=False)


def prediction_table(rows: list[dict], experts: list[str], title: str, width: int) -> Group:
    """One line per image at any terminal width and with any number of experts: the best class in its
    own column, the runners-up and the gates compact (in expert order, named in the legend below)."""
    gate_text = lambda w: "1.0" if w >= 0.995 else f"{w:.2f}"[1:]  # .62: three characters an expert
    columns = {"image": [], "class": [], "p": [], "runners-up": [], "expert": [],
               " ".join(f"{i + 1:<3}" for i in range(len(experts))).rstrip(): []}
    for r in (r for r in rows if "error" not in r):
        best, *others = r["top"]
        gates = list(r["gates"].values())
        leader = max(range(len(gates)), key=gates.__getitem__)
        for cells, text in zip(columns.values(), (
                Path(r["image"]).name, best["class"], f"{best['probability']:.0%}",
                ", ".join(f"{g['class']} {g['probability']:.0%}" for g in others), f"{leader + 1} {experts[leader]}",
                " ".join(gate_text(w) for w in gates))):
            cells.append(text)
    widths = {name: max(map(len, [name, *cells])) for name, cells in columns.items()}
    excess = sum(widths.values()) + 2 * (len(columns) - 1) - width  # two spaces between columns
    for name, floor in (("runners-up", 12), ("image", 12), ("expert", 8), ("runners-up", 0), ("class", 10)):
        cut = max(0, min(excess, widths[name] - floor))
        widths[name] -= cut
        excess -= cut
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    for name, cells in columns.items():
        if widths[name]:
            table.add_column(name, justify="right" if name == "p" else "left", no_wrap=True, overflow="ellipsis",
                             width=widths[name])
    for row in zip(*columns.values()):
        table.add_row(*[cell for name, cell in zip(columns, row) if widths[name]])
    legend = Text("gate weight per expert: " + "  ".join(f"{i + 1}={name}" for i, name in enumerate(experts)))
    return Group(table, legend)


@app.command("predict")
@stage
@reads("model_name")
def predict_command(images: List[Path] = typer.Argument(..., help="PNG/JPEG files, any size"),
                    task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION,
                    checkpoint: Optional[Path] = typer.Option(None, help="MoE checkpoint (default: the pipeline's)"),
                    top: int = typer.Option(3, min=1, help="how many classes to show per image"),
                    as_json: bool = typer.Option(False, "--json", help="print one JSON list instead of a table"),
                    *, p: dict):
    """Top classes with probabilities, and the gate weight given to each expert: one row per image on
    stdout. An unreadable file is reported and the others are still classified (exit code 1 then)."""
    spec = task_spec(task)
    paths = Paths(spec.name, p["model_name"])
    model_path = checkpoint or paths.model
    model = load_moe(model_path, spec).to(pick_device())
    mean, std = input_normalisation(spec, model_path, paths.data)
    demo = checkpoint is None and data_source(spec.name) == "demo"
    if demo:
        console.print("[yellow]warning:[/] this model was trained on demo data (generated shapes with the task's class "
                      "names): on real photos its answers mean nothing")
    experts = [t.name for t in spec.teachers]
    rows = classify_files(model, images, spec.image_size, mean, std, spec.class_names, experts, top)
    if as_json:
        stdout.print_json(json.dumps(rows))
    else:
        stdout.print(prediction_table(rows, experts, f"Task {spec.name}{' (demo data)' if demo else ''}: predictions of {model_path}",
                                      stdout.width))
    failed = [r for r in rows if "error" in r]
    for r in failed:
        console.print(f"[bold red]error:[/] {escape(r['error'])}", soft_wrap=True)
    if failed:
        raise typer.Exit(1)
