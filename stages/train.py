"""train: train the merged MoE; log every epoch with DVCLive; resume after an interruption."""

from pathlib import Path

import typer

from moe.analysis import gate_contribution
from moe.checkpoints import load_moe, save_model
from moe.data import prepare_task_data
from moe.plots import heatmap
from moe.runtime import pick_device, resolve_precision, seed_everything
from moe.training import TrainConfig, predict, train

from .common import PARAMS_OPTION, TASK_OPTION, NullLive, Paths, RichProgress, is_rank_zero, opt, params, say, stage, task_spec

app = typer.Typer(add_completion=False)

TRAIN_PARAMS = ("num_epochs", "lr", "weight_decay", "patience", "batch_size", "seed", "diversity_weight",
                "balance_weight", "initial_temperature", "final_temperature")


@app.command("train")
@stage
def train_command(
    task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION,
    num_epochs: int = opt("num_epochs"), lr: float = opt("lr"), weight_decay: float = opt("weight_decay"),
    patience: int = opt("patience"), batch_size: int = opt("batch_size"), seed: int = opt("seed"),
    model_name: str = opt("model_name"), expert_analysis_interval: int = opt("expert_analysis_interval"),
    diversity_weight: float = opt("diversity_weight"), balance_weight: float = opt("balance_weight"),
    initial_temperature: float = opt("initial_temperature"), final_temperature: float = opt("final_temperature"),
    precision: str = opt("precision"),
):
    """Train the MoE: cross-entropy + diversity + balance, cosine-annealed gating temperature, early stopping."""
    from dvclive import Live

    spec = task_spec(task)
    overrides = {k: v for k, v in locals().items() if k in TRAIN_PARAMS + ("model_name", "expert_analysis_interval", "precision")}
    p = params(params_file, **overrides)
    paths = Paths(spec.name)
    device = pick_device()
    cfg = TrainConfig(**{k: p[k] for k in TRAIN_PARAMS}, precision=resolve_precision(p["precision"], device))
    data = prepare_task_data(spec, paths.data, p["val_fraction"], p["seed"], p["max_train_per_class"])
    seed_everything(p["seed"])
    model = load_moe(paths.merged, spec, p["gate_noise_std"]).to(device)
    settings = {"task": spec.name, "val_fraction": p["val_fraction"], "gate_noise_std": p["gate_noise_std"],
                "merged": paths.merged.stat().st_size}
    analysis_dir = paths.plots / "analysis"
    expert_names = [f"{i + 1} {t.name}" for i, t in enumerate(spec.teachers)]

    live_logger = Live(dir=str(paths.live), save_dvc_exp=False, dvcyaml=None, report=None) if is_rank_zero() else NullLive()
    with live_logger as live:
        def on_epoch(record, current_model):
            for key, value in record.items():
                if key != "epoch":
                    live.log_metric(key, value)
            epoch = record["epoch"]
            if current_model is not None and epoch % p["expert_analysis_interval"] == 0:
                _, gates = predict(current_model, data.val.images, data.mean, data.std, precision=cfg.precision)
                heatmap(gate_contribution(gates, data.val.labels, spec.num_classes), expert_names, spec.class_names,
                        f"Task {spec.name}: mean gate weight per class, epoch {epoch}",
                        analysis_dir / f"contribution_epoch_{epoch:03d}.png")
            live.next_step()

        result = train(model, data.train, data.val, cfg, data.mean, data.std,
                       checkpoint=paths.checkpoints / "train_state.pth", settings=settings, on_epoch=on_epoch,
                       progress=RichProgress(f"MoE {spec.name}"), say=say)
        live.summary["best_val_accuracy"] = result.best_val_accuracy
        live.summary["best_epoch"] = result.best_epoch

    model.load_state_dict(result.best_state)
    model.set_temperature(result.best_record["temperature"])  # the router as it was selected
    save_model(paths.model(p["model_name"]), model.cpu(), data.mean, data.std, spec.class_ids, spec.class_names,
               history=result.history, best_epoch=result.best_epoch)
    (paths.checkpoints / "train_state.pth").unlink(missing_ok=True)
    analysis_dir.mkdir(parents=True, exist_ok=True)
    say(f"task {spec.name}: best validation accuracy {100 * result.best_val_accuracy:.1f}% at epoch "
        f"{result.best_epoch}; saved {paths.model(p['model_name'])}")
