"""train: train the merged MoE; a line per epoch, the per-epoch curves as they come; resume after an interruption."""

from pathlib import Path

import typer

from moe.base.data import prepare_task_data
from moe.base.formats import save_csv, save_json
from moe.base.params import param_names
from moe.core import distributed
from moe.core.checkpoints import load_moe, save_model
from moe.core.curves import gate_snapshots, history_tables
from moe.core.methods import TRAIN_PARAMS, train_moe
from moe.core.objectives import DistillObjective
from moe.core.runtime import pick_device, resolve_precision
from moe.core.training import TrainConfig

from .common import PARAMS_OPTION, TASK_OPTION, Paths, RichProgress, reads, same_command, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("train")
@stage
@reads(*param_names(TrainConfig), *param_names(DistillObjective), *TRAIN_PARAMS, "model_name",
       "expert_analysis_interval", "method", "processes")
def train_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Train the MoE: cross-entropy + diversity + balance, cosine-annealed gating temperature, early stopping."""
    distributed.relaunch_under_torchrun(p["processes"], p["batch_size"], "batch_size", same_command(), say)
    spec = task_spec(task)
    paths = Paths(spec.name, p["model_name"])
    device = distributed.setup(pick_device())  # this rank's device under torchrun
    lead = distributed.is_rank_zero()
    data = prepare_task_data(spec, paths.data, p["val_fraction"], p["seed"], p["max_train_per_class"])
    model = load_moe(paths.merged, spec, p["gate_noise_std"]).to(device)
    teachers = [t.name for t in spec.teachers]
    history = []

    def on_epoch(record, _model):  # also replayed for the epochs before a resume
        history.append(record)
        for name, rows in history_tables(history, teachers).items():  # the plots page follows the run
            save_csv(rows, paths.curves[name])

    result = train_moe(p["method"], p, spec, model, data, paths.teacher_files(spec),
                       resolve_precision(p["precision"], device), checkpoint=paths.train_state,
                       on_epoch=on_epoch if lead else None, progress=RichProgress(f"MoE {spec.name}"), say=say)
    distributed.teardown()
    if not lead:
        return
    save_model(paths.model, model.cpu(), data.mean, data.std, spec.class_ids, spec.class_names,
               history=result.history, best_epoch=result.best_epoch)
    for name, rows in history_tables(result.history, teachers, result.start).items():  # with the start, epoch 0
        save_csv(rows, paths.curves[name])
    save_json(gate_snapshots(result.history, spec, p["expert_analysis_interval"]), paths.gate_snapshots)
    save_json({"best_val_accuracy": round(result.best_val_accuracy, 2), "best_epoch": result.best_epoch},
              paths.train_metrics)
    paths.train_state.unlink(missing_ok=True)
    say(f"task {spec.name}: best validation accuracy {result.best_val_accuracy:.1f}% at epoch "
        f"{result.best_epoch}; saved {paths.model}")
