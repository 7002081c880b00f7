"""Initialise the MoE from its teachers.

Backbone = element-wise mean of the teachers' backbones (BatchNorm running statistics included),
after their channels are aligned (``moe.alignment``), or the teachers' zipped backbone
(``moe.zipping``); expert i = teacher i's depthwise-separable block. The router starts fresh with equal gates. The
classifier starts from the teachers' heads: the row of class c, over the expert-feature columns, is
the mean of the head rows of the teachers that hold c (the gating-feature columns start at zero),
so that the merged model predicts like its teachers from its first step.

Averaged convolution weights shift every activation downstream, so the running means of the mean
are not the means of the new activations: ``recalibrate_batchnorm`` re-estimates them on training data.

A teacher given as an ONNX file has no weights to take: the backbone is the mean of the course-CNN
teachers', its expert and the classifier rows of classes only it holds start fresh, and with no
course-CNN teacher at all the whole model does (it then learns by distillation alone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..base.data import Split, TaskData
from ..base.errors import MoEError
from ..base.tasks import TaskSpec
from . import alignment, router, zipping
from .folding import calibration_batches, recalibrate_batchnorm
from .models import BACKBONE_OF_TEACHER, FEATURES, GATE_HIDDEN, MoEModel, TeacherCNN
from .runtime import pick_device, resolve_precision


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


def classifier_from_heads(spec: TaskSpec, teachers: list[TeacherCNN | None],
                          weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight C x 768, bias C) built from the teachers' heads, averaged where classes are shared; the
    rows of classes no head holds (only a teacher without weights, None) keep ``weight`` and ``bias``."""
    weight, bias = weight.clone(), bias.clone()
    rows = torch.zeros(spec.num_classes, FEATURES + GATE_HIDDEN)
    sums = torch.zeros(spec.num_classes)
    count = torch.zeros(spec.num_classes)
    for t_spec, teacher in zip(spec.teachers, teachers):
        if teacher is None:
            continue
        head = teacher.head
        for local, cid in enumerate(t_spec.local_order):
            c = spec.class_index(cid)
            rows[c, :FEATURES] += head.weight.detach()[local]
            sums[c] += head.bias.detach()[local]
            count[c] += 1
    held = count > 0
    weight[held], bias[held] = rows[held] / count[held, None], sums[held] / count[held]
    return weight, bias


@torch.no_grad()
def merge_teachers(spec: TaskSpec, teachers: list[TeacherCNN | None], gate_noise_std: float = 0.1,
                   classifier_from_teachers: bool = True, backbone: dict | None = None) -> MoEModel:
    """``None`` in ``teachers``: a teacher without weights (ONNX); its expert keeps its fresh weights,
    and the backbone is the mean of the others'. ``backbone``: teacher-named backbone tensors to take
    instead of that mean (the zipped backbone, ``moe.zipping``)."""
    if len(teachers) != spec.num_experts:
        raise MoEError(f"task {spec.name}: got {len(teachers)} teachers for {spec.num_experts} experts "
                       "(one expert per teacher in the task spec)")
    model = MoEModel(spec.num_classes, len(teachers), gate_noise_std)
    target = model.state_dict()
    states = [t.state_dict() if t is not None else None for t in teachers]
    given = [s for s in states if s is not None]
    for t_key, m_key in (backbone_key_map(given[0]).items() if given else ()):
        if backbone is not None:
            target[m_key] = backbone[t_key].clone()
            continue
        stacked = torch.stack([s[t_key].double() for s in given])
        target[m_key] = stacked.mean(0).to(target[m_key].dtype)  # integer counters: mean rounded down
    for i, s in enumerate(states):
        for t_key, e_key in (EXPERT_KEYS.items() if s is not None else ()):
            target[f"experts.{i}.{e_key}"] = s[t_key].clone()
    if classifier_from_teachers:
        target["classifier.weight"], target["classifier.bias"] = classifier_from_heads(
            spec, teachers, target["classifier.weight"], target["classifier.bias"])
    model.load_state_dict(target)
    return model


@dataclass(frozen=True)
class MergeSettings:
    """How the teachers become one model (``merge.*`` and a few top-level parameters, ``moe.base.params``)."""
    alignment: str = field(metadata={"param": "merge.alignment"})
    alignment_images: int = field(metadata={"param": "merge.alignment_images"})
    alignment_rounds: int = field(metadata={"param": "merge.alignment_rounds"})
    router_init: str = field(metadata={"param": "merge.router_init"})
    router_fit_steps: int = field(metadata={"param": "merge.router_fit_steps"})
    router_uniform_share: float = field(metadata={"param": "merge.router_uniform_share"})
    classifier_fit_steps: int = field(metadata={"param": "merge.classifier_fit_steps"})
    fit_images: int = field(metadata={"param": "merge.fit_images"})
    min_odds_ratio: float = field(metadata={"param": "merge.min_odds_ratio"})
    bn_recalibration_batches: int
    batch_size: int
    classifier_from_teachers: bool
    gate_noise_std: float
    seed: int
    precision: str  # the feature cache's: auto, bf16 or fp32 (``moe.runtime``)


@dataclass
class MergeReport:
    """What the merge did, for the stage's line and ``metrics/<task>_merge.json``."""
    bn_images: int = 0
    alignment_images: int = 0
    fit_images: int = 0  # training images the router and classifier fits read
    correlation_before: dict = field(default_factory=dict)  # point -> mean matched correlation
    correlation_after: dict = field(default_factory=dict)
    router_loss: float | None = None
    classifier_loss: float | None = None
    # the check against a random start (merge.min_odds_ratio): validation accuracy of each, calibrated
    merged_val_accuracy: float | None = None
    random_val_accuracy: float | None = None
    odds_ratio: float | None = None  # the merged model's odds of a right answer over the random start's
    started_random: bool = False  # the check failed: training starts from scratch's random weights
    seconds: dict = field(default_factory=dict)  # step -> seconds (the check's in all: random_start_check)
    check_seconds: dict = field(default_factory=dict)  # the check's random start: its calibration's steps -> seconds


def training_subset(data: TaskData, count: int, seed: int) -> Split:
    """``count`` seeded training images with their labels, in a seeded order (all of them when there are
    fewer; 0: the training split itself): the merge's statistics and fits need fewer images than training."""
    if count <= 0:
        return data.train
    g = torch.Generator().manual_seed(seed + 1)
    return data.train.subset(torch.randperm(len(data.train), generator=g)[:count])


def step_clock(seconds: dict, what: str, say=lambda s: None):
    """A ``lap(step)`` that keeps each step's seconds in ``seconds`` and says a line as the step ends:
    on a slow CPU a merge takes minutes (Task B on two AVX2 cores: about eight), in four or five steps."""
    clock = time.perf_counter()

    def lap(step: str):
        nonlocal clock
        seconds[step] = round(time.perf_counter() - clock, 2)
        say(f"{what}: {step.replace('_', ' ')} done in {seconds[step]:.0f} s")
        clock = time.perf_counter()
    return lap


def merge_and_calibrate(spec: TaskSpec, teachers: list[TeacherCNN | None], normalisations: list[tuple], data: TaskData,
                        settings: MergeSettings, say=lambda s: None) -> tuple[MoEModel, MergeReport]:
    """The merged model, ready to train: teachers aligned (``merge.alignment``), averaged or zipped,
    then ``calibrate``d. Runs on a GPU when there is one. ``say`` hears a line after each step.
    ``teachers``: None where a teacher has no weights to merge (ONNX).
    ``normalisations``: each teacher's (mean, std), the inputs it saw in training."""
    report = MergeReport()
    lap = step_clock(report.seconds, "merge", say)
    device = pick_device()

    teachers = list(teachers)  # None: a teacher without weights to merge (ONNX)
    cnn = [i for i, t in enumerate(teachers) if t is not None]
    backbone = None  # merge.alignment zip: the zipped backbone, in place of the teachers' mean
    if settings.alignment in ("permute", "zip") and len(cnn) >= 2:
        images = training_subset(data, settings.alignment_images, settings.seed).images
        given = [teachers[i].to(device) for i in cnn]
        own = [normalisations[i] for i in cnn]
        if settings.alignment == "zip":
            backbone, found = zipping.zip_teachers(given, images, own, settings.alignment_rounds)
        else:
            found = alignment.align_teachers(given, images, own, settings.alignment_rounds)
        for i, perms in zip(cnn, found.perms):
            teachers[i] = alignment.permute_teacher(teachers[i], perms).cpu()
        report.alignment_images = len(images)
        report.correlation_before, report.correlation_after = found.correlation_before, found.correlation_after
        lap("alignment")
    torch.manual_seed(settings.seed)  # the fresh router's initial weights; torch's default seed differs per process
    model = merge_teachers(spec, teachers, settings.gate_noise_std, settings.classifier_from_teachers,
                           backbone).to(device)
    return calibrate(model, spec, data, settings, report, lap), report


def calibrate(model: MoEModel, spec: TaskSpec, data: TaskData, settings: MergeSettings, report: MergeReport,
              lap=lambda step: None) -> MoEModel:
    """What follows the merge itself, for any starting weights: the backbone's BatchNorm statistics
    re-estimated on seeded training batches, then the router (and classifier) fitted on cached training
    features where asked. ``report`` is filled in; ``lap(step)`` is called after each step."""
    device = next(model.parameters()).device
    report.bn_images = recalibrate_batchnorm(model.feature_extractor, calibration_batches(
        data.train.images, data.mean, data.std, settings.seed, settings.bn_recalibration_batches, settings.batch_size,
        device))
    lap("batchnorm")
    fit_router = settings.router_init == "fitted" and settings.router_fit_steps > 0
    if fit_router or settings.classifier_fit_steps > 0:
        images = training_subset(data, settings.fit_images, settings.seed)
        cache = router.cache_features(model, images, data.mean, data.std, resolve_precision(settings.precision, device))
        report.fit_images = len(images)
        lap("feature_cache")
        if fit_router:
            report.router_loss = round(router.fit_router(model, cache, spec, settings.router_fit_steps, settings.seed,
                                                              settings.router_uniform_share), 4)
        if settings.classifier_fit_steps > 0:
            report.classifier_loss = round(router.fit_classifier(model, cache, settings.classifier_fit_steps,
                                                                 settings.seed), 4)
        lap("fits")
    return model.eval()
