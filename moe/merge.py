"""Initialise the MoE from its teachers.

Backbone = element-wise mean of the teachers' backbones (BatchNorm running statistics included);
expert i = teacher i's depthwise-separable block. The router starts fresh with equal gates. The
classifier starts from the teachers' heads: the row of class c, over the expert-feature columns, is
the mean of the head rows of the teachers that hold c (the gating-feature columns start at zero),
so that the merged model predicts like its teachers from its first step.

Averaged convolution weights shift every activation downstream, so the running means of the mean
are not the means of the new activations: ``recalibrate_batchnorm`` re-estimates them on training data.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .data import TaskData, normalize
from .errors import MoEError
from .models import BACKBONE_OF_TEACHER, FEATURES, GATE_HIDDEN, MoEModel, TeacherCNN
from .runtime import pick_device
from .tasks import TaskSpec


def backbone_key_map(teacher_state: dict) -> dict[str, str]:
    """teacher key -> MoE key, for every backbone tensor."""
    mapping = {}
    for k in teacher_state:
        layer, _, rest = k.partition(".")
        if layer in BACKBONE_OF_TEACHER:
            mapping[k] = f"feature_extractor.{BACKBONE_OF_TEACHER[layer]}.{rest}"
    return mapping


EXPERT_KEYS = {"conv3.0.depthwise.weight": "0.weight", "conv3.0.pointwise.weight": "1.weight",
               "conv3.0.bn.weight": "2.weight", "conv3.0.bn.bias": "2.bias",
               "conv3.0.bn.running_mean": "2.running_mean", "conv3.0.bn.running_var": "2.running_var",
               "conv3.0.bn.num_batches_tracked": "2.num_batches_tracked"}


def classifier_from_heads(spec: TaskSpec, teachers: list[TeacherCNN]) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight C x 768, bias C) built from the teachers' heads, averaged where classes are shared."""
    weight = torch.zeros(spec.num_classes, FEATURES + GATE_HIDDEN)
    bias = torch.zeros(spec.num_classes)
    count = torch.zeros(spec.num_classes)
    for t_spec, teacher in zip(spec.teachers, teachers):
        head = teacher.head
        for local, cid in enumerate(t_spec.local_order):
            c = spec.class_index(cid)
            weight[c, :FEATURES] += head.weight.detach()[local]
            bias[c] += head.bias.detach()[local]
            count[c] += 1
    return weight / count[:, None], bias / count


@torch.no_grad()
def merge_teachers(spec: TaskSpec, teachers: list[TeacherCNN], gate_noise_std: float = 0.1,
                   classifier_from_teachers: bool = True) -> MoEModel:
    if len(teachers) != spec.num_experts:
        raise MoEError(f"task {spec.name}: got {len(teachers)} teachers for {spec.num_experts} experts "
                       "(one expert per teacher in the task spec)")
    model = MoEModel(spec.num_classes, len(teachers), gate_noise_std)
    target = model.state_dict()
    states = [t.state_dict() for t in teachers]
    for t_key, m_key in backbone_key_map(states[0]).items():
        stacked = torch.stack([s[t_key].double() for s in states])
        target[m_key] = stacked.mean(0).to(target[m_key].dtype)  # integer counters: mean rounded down
    for i, s in enumerate(states):
        for t_key, e_key in EXPERT_KEYS.items():
            target[f"experts.{i}.{e_key}"] = s[t_key].clone()
    if classifier_from_teachers:
        target["classifier.weight"], target["classifier.bias"] = classifier_from_heads(spec, teachers)
    model.load_state_dict(target)
    return model


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, batches) -> int:
    """Reset and re-estimate the running statistics of every BatchNorm in ``module``; returns images seen.
    No batches: the statistics are left as they are (the teachers' mean, for the ablation)."""
    batches = list(batches)
    if not batches:
        return 0
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    was_training = module.training
    module.train()
    seen = 0
    for x in batches:
        module(x)
        seen += len(x)
    for m, (momentum, _) in zip(norms, saved):
        m.momentum = momentum
    module.train(was_training)
    return seen


def merge_and_calibrate(spec: TaskSpec, teachers: list[TeacherCNN], data: TaskData, seed: int,
                        bn_recalibration_batches: int, batch_size: int, gate_noise_std: float = 0.1,
                        classifier_from_teachers: bool = True) -> tuple[MoEModel, int]:
    """The merged model with its backbone's BatchNorm statistics re-estimated on seeded training
    batches (on a GPU when there is one); returns it with the number of images those statistics saw."""
    torch.manual_seed(seed)  # the fresh router's initial weights; torch's default seed differs per process
    model = merge_teachers(spec, teachers, gate_noise_std, classifier_from_teachers).to(pick_device())
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.train), generator=g)[: bn_recalibration_batches * batch_size]
    device = next(model.parameters()).device
    batches = [normalize(data.train.images[idx].to(device), data.mean, data.std) for idx in order.split(batch_size)
               if len(idx) > 1]
    return model, recalibrate_batchnorm(model.feature_extractor, batches)


def random_moe(spec: TaskSpec, seed: int, gate_noise_std: float = 0.1) -> MoEModel:
    """The MoE architecture with fresh, seeded weights (method scratch: no teacher involved)."""
    torch.manual_seed(seed)
    return MoEModel(spec.num_classes, spec.num_experts, gate_noise_std)


def initial_moe(spec: TaskSpec, teacher_files, data: TaskData, p: dict) -> tuple[MoEModel, int]:
    """The model ``p["method"]`` starts from: random weights for scratch, else the calibrated merge of
    the teachers in ``teacher_files``; with the images the BatchNorm statistics saw."""
    if p["method"] == "scratch":
        return random_moe(spec, p["seed"], p["gate_noise_std"]), 0
    from .checkpoints import load_teacher

    teachers = [load_teacher(f, len(t.class_ids)) for f, t in zip(teacher_files, spec.teachers)]
    return merge_and_calibrate(spec, teachers, data, p["seed"], p["bn_recalibration_batches"], p["batch_size"],
                               p["gate_noise_std"], p["classifier_from_teachers"])
