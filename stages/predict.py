"""predict: classify image files with a trained MoE and show which experts it asked."""

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from moe.core.checkpoints import load_moe
from moe.core.inference import classify_files
from moe.core.runtime import pick_device
from moe.results.evaluation import input_normalisation

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, data_source, reads, stage, stdout, task_spec
from .console import prediction_table

app = typer.Typer(add_completion=False)


@app.command("predict")
@stage
@reads("model_name", "tta_flip", "tta_shift")
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
                      "names): on real photos its answers mean nothing", soft_wrap=True)
    experts = [t.name for t in spec.teachers]
    rows = classify_files(model, images, spec.image_size, mean, std, spec.class_names, experts, top, p["tta_flip"],
                          p["tta_shift"])
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
