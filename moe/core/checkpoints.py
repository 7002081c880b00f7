"""This project's model files: the state_dict under 'model_state_dict' (so the original code reads
them too) plus everything else the model's output depends on: normalisation, class ids and names,
the gating temperature it was selected at, and its training history.

A file without that metadata is taken for one the original project wrote (a released best model);
``moe.evaluation.evaluation_set`` applies the original's evaluation rules to it.
"""

from __future__ import annotations

from pathlib import Path

from ..base.errors import MoEError
from ..base.formats import check_state_dict, read_state_dict, safe_load, save_torch
from ..base.tasks import TaskSpec
from .models import ORIGINAL_GATE_TEMPERATURE, MoEModel, TeacherCNN, reference_shapes
from .onnx_teachers import OnnxTeacher, is_onnx, load_onnx_teacher, onnx_metadata
from .runtime import pick_device


def save_model(path: str | Path, model, mean, std, class_ids, class_names, **extra) -> None:
    """An MoE also records its gating temperature: it is not in the state_dict, yet changes every gate."""
    if isinstance(model, MoEModel):
        extra = {"gate_temperature": model.temperature, **extra}
    save_torch({"model_state_dict": model.state_dict(), "mean": list(mean), "std": list(std),
                "class_ids": list(class_ids), "class_names": list(class_names), **extra}, path)


def read_metadata(path: str | Path) -> dict:
    if is_onnx(path):
        return onnx_metadata(path)
    obj = safe_load(path)
    return {k: v for k, v in obj.items() if k != "model_state_dict"} if isinstance(obj, dict) and "model_state_dict" in obj else {}


def written_by_this_project(metadata: dict) -> bool:
    """Our files carry their normalisation; the original project's best models carry none."""
    return "mean" in metadata and "std" in metadata


def load_teacher(path: str | Path, num_classes: int, image_size: int | None = None) -> TeacherCNN | OnnxTeacher:
    """A course-CNN teacher from a .pth, or any classifier from an .onnx (``moe.core.onnx_teachers``)."""
    if is_onnx(path):
        return load_onnx_teacher(path, num_classes, image_size, pick_device())
    state = read_state_dict(path)
    model = TeacherCNN(num_classes)
    check_state_dict(path, state, reference_shapes(model), f"{num_classes}-class teacher")
    model.load_state_dict(state)
    return model


def load_moe(path: str | Path, spec: TaskSpec, gate_noise_std: float = 0.1) -> MoEModel:
    """The MoE at the gating temperature its file records; a released file at the original's 2.0."""
    state = read_state_dict(path)
    model = MoEModel(spec.num_classes, spec.num_experts, gate_noise_std)
    check_state_dict(path, state, reference_shapes(model),
                     f"{spec.num_classes}-class, {spec.num_experts}-expert MoE (task {spec.name})")
    model.load_state_dict(state)
    temperature = read_metadata(path).get("gate_temperature", ORIGINAL_GATE_TEMPERATURE)
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise MoEError(f"{path}: 'gate_temperature' must be a positive number, found {temperature!r}")
    model.set_temperature(temperature)
    return model


def normalisation_of(path: str | Path) -> tuple[list[float], list[float]] | None:
    """The (mean, std) a file of ours was trained with; None for a released file, which is normalised
    with the statistics of the images it is evaluated on, as the original's evaluation did."""
    meta = read_metadata(path)
    if written_by_this_project(meta):
        return list(meta["mean"]), list(meta["std"])
    return None
