"""new-task: a task spec from an image folder, added to the pipeline's task list."""

from pathlib import Path
from typing import List, Optional

import typer

from moe.base.errors import MoEError
from moe.base.formats import save_text
from moe.sources.image_folder import export_image_folder
from moe.sources.scaffold import add_to_task_list, spec_yaml, task_from_image_folder

from .common import PARAMS_OPTION, TASK_OPTION, TASKS_DIR, Paths, say, stage, task_spec

app = typer.Typer(add_completion=False)


def _pairs(values: List[str], option: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, rest = v.partition(":")
        if not sep or not name.strip() or not rest.strip():
            raise typer.BadParameter(f"'{v}' is not NAME: VALUE", param_hint=option)
        out[name.strip()] = rest.strip()
    return out


@app.command("new-task")
@stage
def new_task_command(name: str = typer.Argument(..., help="the task's name (tasks/NAME.yaml)"),
                     images: Path = typer.Option(..., help="image folder: train/<class>/*.png|jpg, test/<class>/..."),
                     teacher: List[str] = typer.Option(..., help="a teacher and its classes, e.g. 'pets: cat, dog' "
                                                       "(repeat for each teacher, two or more)"),
                     image_size: int = typer.Option(32, help="side of the square images the model sees"),
                     checkpoint: Optional[List[str]] = typer.Option(None, help="a teacher trained already, e.g. "
                                                                    "'pets: inputs/mine/pets.pth' (else pretrain trains it)"),
                     onnx: Optional[List[str]] = typer.Option(None, help="a teacher of any architecture as an ONNX file, "
                                                              "e.g. 'dogs: inputs/mine/dogs.onnx' (it teaches by "
                                                              "distillation: method distill)"),
                     inputs: Optional[Path] = typer.Option(None, help="what DVC tracks for this task (default: the "
                                                           "image folder); put checkpoints and ONNX files inside it too"),
                     params_file: Path = PARAMS_OPTION):
    """Write tasks/NAME.yaml from an image folder and add NAME to params.yaml's tasks: dvc repro runs it next."""
    teachers = {k: [c.strip() for c in v.split(",") if c.strip()] for k, v in _pairs(teacher, "--teacher").items()}
    spec = task_from_image_folder(name, images.as_posix(), teachers, image_size,
                                  _pairs(checkpoint or [], "--checkpoint"), _pairs(onnx or [], "--onnx"))
    target = TASKS_DIR / f"{name}.yaml"
    if target.exists():
        raise MoEError(f"{target}: exists already (remove it first to write a new one)")
    params_text = add_to_task_list(params_file.read_text(), name, (inputs or images).as_posix())
    save_text(spec_yaml(spec), target)
    save_text(params_text, params_file)
    say(f"written {target} ({len(spec['classes'])} classes, {len(spec['teachers'])} teachers) and added '{name}' to "
        f"{params_file}; next: dvc add {(inputs or images).as_posix()} && dvc repro"
        + (" (ONNX teachers teach by distillation: -S method=distill)" if onnx else ""))


@app.command("export-images")
@stage
def export_images_command(task: str = TASK_OPTION,
                          out: Path = typer.Option(..., help="new folder: train/<class>/*.png and test/<class>/*.png")):
    """Write a fetched task's images as an image folder (to try `moe new-task` on data at hand)."""
    spec = task_spec(task)
    count = export_image_folder(spec, Paths(spec.name).data, out)
    say(f"written {count} images of task {spec.name} ({spec.num_classes} classes) under {out}")
