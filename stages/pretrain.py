"""pretrain: one teacher per class subset, or the source's own teacher checkpoints when it ships them."""

from pathlib import Path

import typer

from moe.checkpoints import load_teacher, save_model
from moe.data import prepare_task_data, prepare_teacher_data
from moe.formats import save_json
from moe.models import TeacherCNN
from moe.runtime import pick_device, resolve_precision, seed_everything
from moe.training import TrainConfig, predict, train

from .common import PARAMS_OPTION, TASK_OPTION, Paths, RichProgress, opt, params, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("pretrain")
@stage
def pretrain_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION,
                     epochs: int = opt("teacher.epochs"), lr: float = opt("teacher.lr"),
                     batch_size: int = opt("teacher.batch_size"), seed: int = opt("seed")):
    """Train (or take from the source) the task's teachers and report each one's accuracy on its own classes."""
    spec = task_spec(task)
    p = params(params_file, teacher__epochs=epochs, teacher__lr=lr, teacher__batch_size=batch_size, seed=seed)
    paths = Paths(spec.name)
    device = pick_device()
    precision = resolve_precision(p["precision"], device)
    data = prepare_task_data(spec, paths.data, p["val_fraction"], p["seed"], p["max_train_per_class"])
    mean, std = data.mean, data.std
    report = {}
    for i, t in enumerate(spec.teachers):
        train_set, val_set, test_set = prepare_teacher_data(spec, paths.data, i, p["val_fraction"], p["seed"], p["max_train_per_class"])
        shipped = paths.data / t.checkpoint if t.checkpoint else None
        if shipped and shipped.exists():
            model = load_teacher(shipped, len(t.class_ids))
            origin = str(shipped)
        else:
            seed_everything(p["seed"] + i)
            model = TeacherCNN(len(t.class_ids)).to(device)
            cfg = TrainConfig(num_epochs=p["teacher.epochs"], lr=p["teacher.lr"], weight_decay=p["weight_decay"],
                              patience=p["teacher.epochs"], batch_size=p["teacher.batch_size"], seed=p["seed"] + i,
                              precision=precision)
            result = train(model, train_set, val_set, cfg, mean, std, progress=RichProgress(f"teacher {t.name}"), say=say)
            model.load_state_dict(result.best_state)
            origin = "trained"
        logits, _ = predict(model, test_set.images, mean, std, precision=precision)
        acc = 100.0 * (logits.argmax(1) == test_set.labels).float().mean().item()
        report[t.name] = {"accuracy": round(acc, 2), "origin": origin}
        save_model(paths.teachers / f"teacher_{i + 1}.pth", model.cpu(), mean, std, t.local_order,
                   [spec.name_of(c) for c in t.local_order])
        say(f"teacher {i + 1} ({t.name}): {acc:.1f}% on its own {len(test_set)} test images ({origin})")
    save_json(report, paths.metrics / f"{spec.name}_teachers.json")
