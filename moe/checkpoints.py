"""This project's model files: the state_dict under 'model_state_dict' (so the original code reads
them too) plus what is needed to use the model: normalisation, class ids and names, history."""

from __future__ import annotations

from pathlib import Path

from .errors import MoEError
from .formats import check_state_dict, read_state_dict, safe_load, save_torch
from .models import MoEModel, TeacherCNN, reference_shapes
from .tasks import TaskSpec


def save_model(path: str | Path, model, mean, std, class_ids, class_names, **extra) -> None:
    save_torch({"model_state_dict": model.state_dict(), "mean": list(mean), "std": list(std),
                "class_ids": list(class_ids), "class_names": list(class_names), **extra}, path)


def read_metadata(path: str | Path) -> dict:
    obj = safe_load(path)
    return {k: v for k, v in obj.items() if k != "model_state_dict"} if isinstance(obj, dict) and "model_state_dict" in obj else {}


def load_teacher(path: str | Path, num_classes: int) -> TeacherCNN:
    state = read_state_dict(path)
    model = TeacherCNN(num_classes)
    check_state_dict(path, state, reference_shapes(model), f"{num_classes}-class teacher")
    model.load_state_dict(state)
    return model


def load_moe(path: str | Path, spec: TaskSpec, gate_noise_std: float = 0.1) -> MoEModel:
    state = read_state_dict(path)
    model = MoEModel(spec.num_classes, spec.num_experts, gate_noise_std)
    check_state_dict(path, state, reference_shapes(model),
                     f"{spec.num_classes}-class, {spec.num_experts}-expert MoE (task {spec.name})")
    model.load_state_dict(state)
    return model


def normalisation_of(path: str | Path, spec: TaskSpec) -> tuple[list[float], list[float]]:
    """Our files carry their normalisation; a released checkpoint uses the task spec's."""
    meta = read_metadata(path)
    if "mean" in meta and "std" in meta:
        return list(meta["mean"]), list(meta["std"])
    if spec.released_mean and spec.released_std:
        return list(spec.released_mean), list(spec.released_std)
    raise MoEError(f"{path}: carries no normalisation and task {spec.name} names none for released models")
