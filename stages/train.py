"""train: train the merged MoE; a line per epoch, DVCLive logs, expert heatmaps; resume after an interruption."""

from pathlib import Path

import typer

from moe import distributed
from moe.analysis import gate_snapshot
from moe.checkpoints import load_moe, save_model
from moe.data import prepare_task_data
from moe.formats import save_csv
from moe.methods import TRAIN_PARAMS, train_moe
from moe.objectives import DistillObjective
from moe.params import param_names
from moe.plots import heatmap, history_tables
from moe.runtime import pick_device, resolve_precision
from moe.training import TrainConfig

from .common import (PARAMS_OPTION, TASK_OPTION, NullLive, Paths, RichProgress, heading, reads,
                     same_command, say, stage, task_spec)

app = typer.Typer(add_completion=False)


@app.command("train")
@stage
@reads(*param_names(TrainConfig), *param_names(DistillObjective), *TRAIN_PARAMS, "model_name",
       "expert_analysis_interval", "method", "processes")
def train_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Train the MoE: cross-entropy + diversity + balance, cosine-annealed gating temperature, early stopping."""
    from dvclive import Live

    distributed.relaunch_under_torchrun(p["processes"], p["batch_size"], "batch_size", same_command(), say)
    spec = task_spec(task)
    paths = Paths(spec.name)
    device = distributed.setup(pick_device())  # this rank's device under torchrun
    lead = distributed.is_rank_zero()
    precision = resolve_precision(p["precision"], device)
    data = prepare_task_data(spec, paths.data, p["val_fraction"], p["seed"], p["max_train_per_class"])
    model = load_moe(paths.merged, spec, p["gate_noise_std"]).to(device)
    teachers = [t.name for t in spec.teachers]
    experts = [f"{i + 1} {name}" for i, name in enumerate(teachers)]
    history = []

    live_logger = Live(dir=str(paths.live), save_dvc_exp=False, dvcyaml=None, report=None) if lead else NullLive()
    with live_logger as live:
        def on_epoch(record, current_model):
            for key, value in record.items():
                if key != "epoch":
                    live.log_metric(key, value)
            history.append(record)
            for name, rows in history_tables(history, teachers).items():  # the plots page follows the run
                save_csv(rows, paths.plots / f"{name}.csv")
            epoch = record["epoch"]
            if current_model is not None and epoch % p["expert_analysis_interval"] == 0:
                snapshot = gate_snapshot(current_model, data.val, data.mean, data.std, spec.num_classes, precision)
                heatmap(snapshot, experts, spec.class_names,
                        f"{heading(spec)}: mean gate weight per class (validation), epoch {epoch}",
                        paths.analysis / f"contribution_epoch_{epoch:03d}.png")
            live.next_step()

        result = train_moe(p["method"], p, spec, model, data, [paths.teacher(i) for i in range(spec.num_experts)],
                           precision, checkpoint=paths.train_state, on_epoch=on_epoch,
                           progress=RichProgress(f"MoE {spec.name}"), say=say)
        live.summary["best_val_accuracy"] = result.best_val_accuracy
        live.summary["best_epoch"] = result.best_epoch

    distributed.teardown()
    if not lead:
        return
    save_model(paths.model(p["model_name"]), model.cpu(), data.mean, data.std, spec.class_ids, spec.class_names,
               history=result.history, best_epoch=result.best_epoch)
    paths.train_state.unlink(missing_ok=True)
    paths.analysis.mkdir(parents=True, exist_ok=True)
    say(f"task {spec.name}: best validation accuracy {result.best_val_accuracy:.1f}% at epoch "
        f"{result.best_epoch}; saved {paths.model(p['model_name'])}")
