"""variant: train one variant of params.yaml's `comparison.variants` (comparison/dvc.yaml).

`moe variant --task A --name distill` trains it from the task's teachers (or from random weights)
and writes runs/A/distill.json; `moe comparison` puts every variant side by side.
"""

from pathlib import Path

import typer

from moe.base.data import load_task_split, prepare_task_data
from moe.base.errors import MoEError
from moe.base.formats import save_json
from moe.base.params import param_names
from moe.core.merge import MergeSettings
from moe.core.methods import TRAIN_PARAMS
from moe.core.objectives import DistillObjective
from moe.core.runtime import pick_device, resolve_precision
from moe.core.training import TrainConfig
from moe.core.variants import train_variant, variant_params

from .common import PARAMS_OPTION, TASK_OPTION, Paths, RichProgress, reads, say, stage, task_spec

app = typer.Typer(add_completion=False)
NAME_OPTION = typer.Option(..., "--name", "-n", help="the variant's name in params.yaml comparison.variants")


@app.command("variant")
@stage
@reads("comparison.variants", "method", *param_names(MergeSettings), *param_names(TrainConfig),
       *param_names(DistillObjective), *TRAIN_PARAMS, "tta_flip", "tta_shift")
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
    record = train_variant(spec, data, test, paths.teacher_files(spec), q, device,
                           resolve_precision(q["precision"], device), checkpoint=paths.variant_state(name),
                           progress=RichProgress(f"{name} {spec.name}"), say=say)
    save_json({"variant": name, "changes": variants[name], **record}, paths.run(name))
    paths.variant_state(name).unlink(missing_ok=True)
    say(f"variant {name}: test accuracy {record['test_accuracy']:.2f}% after {record['train_seconds']:.0f} s of "
        f"training ({record['images_seen']} images seen); written {paths.run(name)}")
