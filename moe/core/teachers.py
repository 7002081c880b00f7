"""The task's teachers: the source's own checkpoints where it ships them, else trained here.

A teacher is scored on the test images of its own classes, in its head's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..base.data import prepare_task_data, prepare_teacher_data
from ..base.errors import MoEError
from ..base.tasks import TaskSpec
from .checkpoints import load_teacher, read_metadata
from .inference import accuracy, predict
from .models import TeacherCNN
from .onnx_teachers import OnnxTeacher
from .objectives import CrossEntropy
from .runtime import seed_everything
from .training import TrainConfig, fit


@dataclass(frozen=True)
class TeacherSettings:
    """How teachers the source lacks are trained (``moe.params``: teacher.*, and the data's split)."""
    epochs: int = field(metadata={"param": "teacher.epochs"})
    lr: float = field(metadata={"param": "teacher.lr"})
    batch_size: int = field(metadata={"param": "teacher.batch_size"})
    label_smoothing: float = field(metadata={"param": "teacher.label_smoothing"})
    warmup_epochs: float = field(metadata={"param": "teacher.warmup_epochs"})
    low_res_epochs: int = field(metadata={"param": "teacher.low_res_epochs"})
    low_res_scale: float
    bn_recalibration_batches: int  # after a small epoch: the batches its full-size statistics are measured on
    weight_decay: float
    weight_decay_scope: str
    val_fraction: float
    max_train_per_class: int
    seed: int


@dataclass
class Teacher:
    model: TeacherCNN | OnnxTeacher
    accuracy: float  # percent, on the test images of its own classes
    test_images: int
    origin: str  # "trained", or the checkpoint's path
    mean: list  # the normalisation it was trained with
    std: list


def _given_teacher(spec: TaskSpec, i: int, data_root: Path) -> tuple[TeacherCNN | OnnxTeacher, str, list | None, list | None] | None:
    """The user's checkpoint or ONNX file (which must exist) or the source's shipped one, checked;
    None: train one."""
    t = spec.teachers[i]
    where = f"task {spec.name}, teacher '{t.name}'"
    if t.onnx:
        path = Path(t.onnx)
        if not path.is_file():
            raise MoEError(f"{path}: ONNX file of {where} not found (fix 'onnx:' in the task spec)")
    elif t.checkpoint:
        path = Path(t.checkpoint)
        if not path.is_file():
            raise MoEError(f"{path}: checkpoint of {where} not found (fix 'checkpoint:' in the task spec, or remove it "
                           "to train this teacher)")
    elif t.shipped_checkpoint and (data_root / t.shipped_checkpoint).is_file():
        path = data_root / t.shipped_checkpoint
    else:
        return None
    model = load_teacher(path, len(t.class_ids), spec.image_size)
    meta = read_metadata(path)
    stored = meta.get("class_ids")
    if stored and tuple(stored) != t.local_order:
        raise MoEError(f"{path}: was trained on class ids {list(stored)}, but {where} lists {list(t.local_order)} "
                       "(its head would answer for the wrong classes)")
    mean, std = (list(t.mean), list(t.std)) if t.mean else (meta.get("mean"), meta.get("std"))
    if isinstance(model, OnnxTeacher) and not (mean and std):
        raise MoEError(f"{path}: states no input normalisation, and {where} gives none: add 'normalization: "
                       "{mean: [r, g, b], std: [r, g, b]}' to the teacher in the task spec (for inputs in [0, 1]: "
                       "mean 0, std 1)")
    return model, str(path), mean, std


def obtain_teachers(spec: TaskSpec, data_root: str | Path, s: TeacherSettings, device: torch.device, precision: str,
                    progress_for=lambda name, runs_after: None, say=lambda s: None) -> tuple[list[Teacher], list, list]:
    """Every teacher of the task (all or nothing), and the task's training normalisation.

    Given checkpoints are all checked before any teacher trains. ``progress_for(name, runs_after)`` gives
    the progress of a teacher trained here, ``runs_after`` the number of teachers to train after it.
    Teachers trained here use the merged task's training statistics, so the merged backbone sees
    inputs on the scale they saw; a given teacher is scored with the normalisation it states.
    """
    root = Path(data_root)
    merged = prepare_task_data(spec, root, s.val_fraction, s.seed, s.max_train_per_class)
    given = [_given_teacher(spec, i, root) for i in range(spec.num_experts)]
    for found in given:
        model = found[0] if found else None
        if isinstance(model, OnnxTeacher) and model.input_size and model.input_size != (spec.image_size,) * 2:
            say(f"warning: {model.path} takes {model.input_size[0]}x{model.input_size[1]} images; task {spec.name}'s "
                f"{spec.image_size}x{spec.image_size} images are resized for it (bilinear, whole image)")
    teachers, to_train = [], sum(g is None for g in given)
    for i, t in enumerate(spec.teachers):
        train_set, val_set, test_set = prepare_teacher_data(spec, root, i, merged, s.max_train_per_class, s.seed)
        if given[i] is not None:
            model, origin, mean, std = given[i]
            mean, std = (mean, std) if mean and std else (merged.mean, merged.std)
        else:
            seed_everything(s.seed + i)
            model, origin, mean, std = TeacherCNN(len(t.class_ids)).to(device), "trained", merged.mean, merged.std
            cfg = TrainConfig(num_epochs=s.epochs, lr=s.lr, weight_decay=s.weight_decay, patience=s.epochs,
                              batch_size=s.batch_size, seed=s.seed + i, warmup_epochs=s.warmup_epochs,
                              weight_decay_scope=s.weight_decay_scope, ema_decay=0.0, precision=precision,
                              low_res_epochs=s.low_res_epochs, low_res_scale=s.low_res_scale,
                              bn_recalibration_batches=s.bn_recalibration_batches)
            to_train -= 1
            fit(model, CrossEntropy(s.label_smoothing), train_set, val_set, cfg, mean, std,
                progress=progress_for(t.name, to_train), say=say)
        logits, _ = predict(model, test_set.images, mean, std, precision=precision)
        teachers.append(Teacher(model.cpu(), 100.0 * accuracy(logits, test_set.labels), len(test_set), origin,
                                list(mean), list(std)))
        say(f"teacher {i + 1} ({t.name}): {teachers[-1].accuracy:.1f}% on its own {len(test_set)} test images ({origin})")
    return teachers, merged.mean, merged.std


def load_task_teachers(spec: TaskSpec, files, mean, std):
    """The pretrained teachers for distillation: (models, each one's output index in the task,
    per teacher a function taking an input normalised with (mean, std) to one normalised as it was
    trained)."""
    from .baselines import output_index

    models, renormalise = [], []
    for t, f in zip(spec.teachers, files):
        models.append(load_teacher(f, len(t.class_ids), spec.image_size))
        meta = read_metadata(f)
        t_mean, t_std = meta.get("mean", mean), meta.get("std", std)
        if list(t_mean) == list(mean) and list(t_std) == list(std):
            renormalise.append(lambda x: x)
        else:
            scale = torch.tensor(std).view(1, 3, 1, 1) / torch.tensor(t_std).view(1, 3, 1, 1)
            shift = (torch.tensor(mean) - torch.tensor(t_mean)).view(1, 3, 1, 1) / torch.tensor(t_std).view(1, 3, 1, 1)
            renormalise.append(lambda x, a=scale, b=shift: x * a.to(x.device) + b.to(x.device))
    return models, output_index(spec), renormalise
