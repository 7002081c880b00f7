"""check: validate the whole params.yaml before any stage runs (dvc repro runs this first)."""

from pathlib import Path

import typer

from moe.base.formats import save_text
from moe.base.tasks import load_task_list, require_distillation

from .common import PARAMS_OPTION, TASKS_DIR, params, say, stage

app = typer.Typer(add_completion=False)


@app.command("check")
@stage
def check_command(params_file: Path = PARAMS_OPTION,
                  out: Path = typer.Option(Path("checked/params.txt"), help="file written when every value is valid")):
    """Every key known, every value of the right type and in range; one line naming the first fault.

    Every stage in dvc.yaml depends on this one's output, so a bad value stops `dvc repro` before DVC
    removes any stage's outputs to rerun it. The output's content never changes, so a valid edit
    does not rerun anything by itself."""
    values = params(params_file)
    specs = load_task_list(values["tasks"], TASKS_DIR, str(params_file))
    for spec in specs:
        require_distillation(spec, values["method"], str(params_file))
    save_text(f"{params_file}: every value and task spec valid\n", out)  # the same text always: no rerun by itself
    say(f"{params_file}: every value valid; task specs {', '.join(values['tasks'])} valid")
    for spec in specs:
        if spec.onnx_teachers:
            cnn = len(spec.teachers) - len(spec.onnx_teachers)
            say(f"task {spec.name}: ONNX teachers {', '.join(spec.onnx_teachers)} teach by distillation only; their "
                "experts start fresh" + (f", the backbone is the average of the {cnn} course-CNN teacher(s)" if cnn
                                         else ", and with no course-CNN teacher the whole MoE starts from random weights"))
