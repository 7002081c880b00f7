"""pretrain: one teacher per class subset, or the source's own teacher checkpoints when it ships them."""

from pathlib import Path

import typer

from moe.base.formats import build_folder, save_json
from moe.base.params import param_names, settings_from
from moe.core import distributed
from moe.core.checkpoints import save_model
from moe.core.onnx_teachers import OnnxTeacher, write_with_metadata
from moe.core.runtime import pick_device, resolve_precision
from moe.core.teachers import TeacherSettings, obtain_teachers

from .common import PARAMS_OPTION, TASK_OPTION, Paths, RichProgress, reads, same_command, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("pretrain")
@stage
@reads(*param_names(TeacherSettings), "precision", "processes")
def pretrain_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Train (or take from the source) the task's teachers and report each one's accuracy on its own classes."""
    distributed.relaunch_under_torchrun(p["processes"], p["teacher.batch_size"], "teacher.batch_size", same_command(), say)
    spec = task_spec(task)
    paths = Paths(spec.name)
    device = distributed.setup(pick_device())  # this rank's device under torchrun
    teachers, _, _ = obtain_teachers(spec, paths.data, settings_from(TeacherSettings, p), device, resolve_precision(p["precision"], device),
                                     progress_for=lambda name, runs_after: RichProgress(f"teacher {name}", runs_after),
                                     say=say if distributed.is_rank_zero() else lambda s: None)
    distributed.teardown()
    if not distributed.is_rank_zero():
        return

    def write_all(folder: Path):  # all teachers or none, and nothing left from an earlier run
        for t, teacher, file in zip(spec.teachers, teachers, paths.teacher_files(spec)):
            names = [spec.name_of(c) for c in t.local_order]
            if isinstance(teacher.model, OnnxTeacher):  # the file as given, stating what later stages need
                write_with_metadata(teacher.model.path, folder / file.name, mean=teacher.mean, std=teacher.std,
                                    class_ids=list(t.local_order), class_names=names)
            else:
                save_model(folder / file.name, teacher.model, teacher.mean, teacher.std, t.local_order, names)

    build_folder(paths.teachers, write_all)
    save_json({t.name: teacher.origin for t, teacher in zip(spec.teachers, teachers)}, paths.teacher_origins)
    save_json({t.name: round(teacher.accuracy, 2) for t, teacher in zip(spec.teachers, teachers)},
              paths.teacher_metrics)  # percent, on each teacher's own classes
