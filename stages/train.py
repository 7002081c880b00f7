"""train: train the merged MoE; a line per epoch, DVCLive logs, expert heatmaps; resume after an interruption."""

from pathlib import Path

import typer

from moe import distributed
from moe.analysis import gate_snapshot
from moe.checkpoints import load_moe, save_model
from moe.data import prepare_task_data
from moe.formats import save_csv
from moe.objectives import objective_for
from moe.plots import heatmap, history_tables
from moe.runtime import pick_device, resolve_precision, seed_everything
from moe.training import TrainConfig, fit

from .common import (PARAMS_OPTION, TASK_OPTION, NullLive, Paths, RichProgress, heading, reads,
                     same_command, say, stage, task_spec)

app = typer.Typer(add_completion=False)


@app.command("train")
@stage
@reads("num_epochs", "lr", "weight_decay", "patience", "batch_size", "seed", "model_name", "expert_analysis_interval",
       "diversity_weight", "balance_weight", "initial_temperature", "final_temperature", "max_train_per_class",
       "val_fraction", "gate_noise_std", "precision", "method", "kd_weight", "kd_temperature", "processes")
def train_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Train the MoE: cross-entropy + diversity + balance, cosine-annealed gating temperature, early stopping."""
    from dvclive import Live

    distributed.relaunch_under_torchrun(p["processes"], p["batch_size"], "batch_size", same_command(), say)
    spec = task_spec(task)
    paths = Paths(spec.name)
    device = distributed.setup(pick_device())  # this rank's device under torchrun
    lead = distributed.is_rank_zero()
    cfg = TrainConfig.from_params(p, precision=resolve_precision(p["precision"], device))
    data = prepare_task_data(spec, paths.data, p["val_fraction"], p["seed"], p["max_train_per_class"])
    model = load_moe(paths.merged, spec, p["gate_noise_std"]).to(device)
    settings = {"task": spec.name, "val_fraction": p["val_fraction"], "gate_noise_std": p["gate_noise_std"],
                "merged": paths.merged.stat().st_size}
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
                snapshot = gate_snapshot(current_model, data.val, data.mean, data.std, spec.num_classes, cfg.precision)
                heatmap(snapshot, experts, spec.class_names,
                        f"{heading(spec)}: mean gate weight per class (validation), epoch {epoch}",
                        paths.analysis / f"contribution_epoch_{epoch:03d}.png")
            live.next_step()

        objective = objective_for(p, spec, [paths.teacher(i) for i in range(spec.num_experts)], data.mean, data.std,
                                  device)
        seed_everything(p["seed"])  # right before training: the comparison's moe variant is this run exactly
        result = fit(model, objective, data.train, data.val, cfg, data.mean, data.std,
                     checkpoint=paths.train_state, settings=settings, on_epoch=on_epoch,
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
