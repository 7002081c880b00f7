"""The task's teachers: the source's own checkpoints where it ships them, else trained here.

A teacher is scored on the test images of its own classes, in its head's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoints import load_teacher
from .data import prepare_task_data, prepare_teacher_data
from .inference import accuracy, predict
from .models import TeacherCNN
from .objectives import CrossEntropy
from .runtime import seed_everything
from .tasks import TaskSpec
from .training import TrainConfig, fit


@dataclass
class Teacher:
    model: TeacherCNN
    accuracy: float  # percent, on the test images of its own classes
    test_images: int
    origin: str  # "trained", or the shipped checkpoint's path


def obtain_teachers(spec: TaskSpec, data_root: str | Path, p: dict, device: torch.device, precision: str,
                    progress_for=lambda name: None, say=lambda s: None) -> tuple[list[Teacher], list, list]:
    """Every teacher of the task (all or nothing), and the normalisation they were trained with.

    ``p`` holds teacher.epochs, teacher.lr, teacher.batch_size, weight_decay, val_fraction,
    max_train_per_class and seed. Teachers train on the merged task's training statistics, so the
    merged backbone sees inputs on the scale every teacher saw.
    """
    root = Path(data_root)
    merged = prepare_task_data(spec, root, p["val_fraction"], p["seed"], p["max_train_per_class"])
    mean, std = merged.mean, merged.std
    teachers = []
    for i, t in enumerate(spec.teachers):
        train_set, val_set, test_set = prepare_teacher_data(spec, root, i, p["val_fraction"], p["seed"],
                                                            p["max_train_per_class"])
        shipped = root / t.checkpoint if t.checkpoint else None
        if shipped and shipped.exists():
            model, origin = load_teacher(shipped, len(t.class_ids)), str(shipped)
        else:
            seed_everything(p["seed"] + i)
            model = TeacherCNN(len(t.class_ids)).to(device)
            cfg = TrainConfig(num_epochs=p["teacher.epochs"], lr=p["teacher.lr"], weight_decay=p["weight_decay"],
                              patience=p["teacher.epochs"], batch_size=p["teacher.batch_size"], seed=p["seed"] + i,
                              precision=precision)
            fit(model, CrossEntropy(), train_set, val_set, cfg, mean, std, progress=progress_for(t.name), say=say)
            origin = "trained"
        logits, _ = predict(model, test_set.images, mean, std, precision=precision)
        teachers.append(Teacher(model.cpu(), 100.0 * accuracy(logits, test_set.labels), len(test_set), origin))
        say(f"teacher {i + 1} ({t.name}): {teachers[-1].accuracy:.1f}% on its own {len(test_set)} test images ({origin})")
    return teachers, mean, std
