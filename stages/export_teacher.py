"""export-teacher: a teacher of the pipeline as an ONNX file, stating its classes and normalisation."""

from pathlib import Path

import typer

from moe.base.errors import MoEError
from moe.core.checkpoints import load_teacher, read_metadata
from moe.core.onnx_teachers import export_teacher, is_onnx

from .common import TASK_OPTION, Paths, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("export-teacher")
@stage
def export_teacher_command(task: str = TASK_OPTION,
                           teacher: str = typer.Option(..., help="the teacher's name in the task spec"),
                           out: Path = typer.Option(..., help="the .onnx file to write")):
    """Write one of pretrain's course-CNN teachers as ONNX: any N x 3 x S x S batch in, logits out, with
    mean, std, class_ids and class_names in the file's metadata (what an `onnx:` teacher may state)."""
    spec = task_spec(task)
    names = [t.name for t in spec.teachers]
    if teacher not in names:
        raise MoEError(f"--teacher: task {spec.name} has no teacher '{teacher}' (it has: {', '.join(names)})")
    if not is_onnx(out):
        raise MoEError(f"--out: '{out}' must end in .onnx")
    i = names.index(teacher)
    source = Paths(spec.name).teacher_files(spec)[i]
    if is_onnx(source):
        raise MoEError(f"{source}: teacher '{teacher}' is an ONNX file already")
    t = spec.teachers[i]
    meta = read_metadata(source)
    export_teacher(load_teacher(source, len(t.class_ids)), spec.image_size, out, mean=meta["mean"], std=meta["std"],
                   class_ids=list(t.local_order), class_names=[spec.name_of(c) for c in t.local_order])
    say(f"written {out}: teacher '{teacher}' of task {spec.name} ({len(t.class_ids)} classes, "
        f"{spec.image_size}x{spec.image_size} images) from {source}")
