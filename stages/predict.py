"""predict: classify image files with a trained MoE and show which experts it asked."""

from pathlib import Path
from typing import List, Optional

import torch
import typer
from rich.table import Table

from moe.checkpoints import load_moe
from moe.evaluation import input_normalisation
from moe.images import read_image
from moe.inference import predict

from .common import PARAMS_OPTION, TASK_OPTION, Paths, console, reads, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("predict")
@stage
@reads("model_name")
def predict_command(images: List[Path] = typer.Argument(..., help="PNG/JPEG files, any size"),
                    task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION,
                    checkpoint: Optional[Path] = typer.Option(None, help="MoE checkpoint (default: the pipeline's)"),
                    top: int = typer.Option(3, min=1, help="how many classes to show per image"), *, p: dict):
    """Top classes with probabilities, and the gate weight given to each expert."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    model_path = checkpoint or paths.model(p["model_name"])
    model = load_moe(model_path, spec)
    mean, std = input_normalisation(spec, model_path, paths.data)
    batch = torch.stack([read_image(p, spec.image_size) for p in images])
    logits, gates = predict(model, batch, mean, std)
    probs = logits.softmax(1)
    table = Table(title=f"Task {spec.name} predictions ({model_path})")
    table.add_column("image")
    table.add_column(f"top {top}")
    for t in spec.teachers:
        table.add_column(f"gate {t.name}", justify="right")
    for path, p, g in zip(images, probs, gates):
        best = p.topk(min(top, spec.num_classes))
        guesses = ", ".join(f"{spec.class_names[i]} {v:.0%}" for v, i in zip(best.values.tolist(), best.indices.tolist()))
        table.add_row(path.name, guesses, *[f"{w:.2f}" for w in g.tolist()])
    console.print(table)
