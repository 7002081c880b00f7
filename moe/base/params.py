"""Every hyperparameter, its meaning and its valid range, checked before any work starts.

``params.yaml`` holds the values; this schema is the single place that says what they mean (the
Typer help texts are drawn from it too). Unknown keys are errors that name the closest known key.
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import MoEError


SOURCES = ("demo", "archive", "cas771", "cifar100", "image_folder")  # where a task's data comes from (moe.sources)
PRECISIONS = ("auto", "bf16", "fp32")  # how numbers are computed (moe.runtime)
TEACHER_RUNTIMES = ("auto", "torch", "onnxruntime")  # what runs distill's frozen teachers (moe.core.onnx_teachers)
KD_TARGETS = ("crops", "images")  # what distill's teachers predict on: each training crop, or each image once (moe.core.objectives)
METHODS = ("moe", "distill", "scratch")  # how the MoE is made (moe.methods)
ALIGNMENTS = ("none", "permute", "zip")  # how the teachers' channels are matched before averaging (moe.alignment)
ROUTER_INITS = ("fresh", "fitted")  # how the router starts (moe.router)
FLIPS = ("random", "alternating")  # how training images are mirrored from epoch to epoch (moe.batches)
DECAY_SCOPES = ("all", "matrices")  # which weights weight decay pulls towards zero (moe.training)


@dataclass(frozen=True)
class Param:
    """One hyperparameter, declared once: validation, the CLI option and config defaults derive from it."""
    kind: type
    default: Any  # the original project's default where it has one
    help: str
    check: Callable[[Any], bool] = lambda v: True
    rule: str = ""

    @classmethod
    def choice(cls, default: str, help: str, choices: tuple[str, ...]) -> "Param":
        return cls(str, default, help, lambda v: v in choices, f"one of {', '.join(choices)}")


# task and variant names become folder and file names
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _pos(v):
    return v > 0


def _task_list(v) -> bool:
    return bool(v) and all(isinstance(k, str) and NAME_PATTERN.match(k) and isinstance(p, str) and p
                           for k, p in v.items())


SCHEMA: dict[str, Param] = {
    # the pipeline's tasks
    "tasks": Param(dict, {"A": "tasks/A.yaml", "B": "tasks/B.yaml"},
                   "the tasks dvc repro runs: name -> what its fetch stage reads besides tasks/NAME.yaml (its image "
                   "folder, or the spec itself)", _task_list, "a mapping of task names to paths"),
    # where the data comes from
    "source": Param.choice("demo", "where the data comes from: demo (generated), archive (local zip or folder), "
                           "cas771 (Google Drive), cifar100 (public CIFAR-100, 32x32 tasks), image_folder (the "
                           "task's 'images'); a task spec's own 'source' wins over this", SOURCES),
    "archive": Param(str, "", "path of the local zip or unpacked folder (source: archive), or of "
                     "cifar-100-python.tar.gz (source: cifar100; downloaded when not a .tar.gz path)"),
    "demo.train_per_class": Param(int, 16, "demo: training images per class", lambda v: v >= 4, ">= 4"),
    "demo.test_per_class": Param(int, 20, "demo: test images per class", lambda v: v >= 1, ">= 1"),
    "max_train_per_class": Param(int, 0, "use at most this many training images per class (seeded); 0 uses all",
                                 lambda v: v >= 0, ">= 0"),
    "val_fraction": Param(float, 0.1, "share of each class's training images held out for validation and early "
                          "stopping", lambda v: 0 < v < 1, "between 0 and 1"),
    # teachers
    "teacher.epochs": Param(int, 3, "epochs to train each teacher when the source ships none", lambda v: v >= 1, ">= 1"),
    "teacher.lr": Param(float, 0.001, "teachers' learning rate (AdamW)", _pos, "> 0"),
    "teacher.batch_size": Param(int, 4, "teachers' batch size", lambda v: v >= 2, ">= 2 (BatchNorm needs two samples)"),
    "teacher.label_smoothing": Param(float, 0.0, "teachers' label smoothing (0: plain cross-entropy)",
                                     lambda v: 0 <= v < 1, "0 <= value < 1"),
    "teacher.warmup_epochs": Param(float, 0.0, "teachers' epochs of linear learning-rate warmup",
                                   lambda v: v >= 0, ">= 0"),
    "teacher.low_res_epochs": Param(int, 0, "teachers' first epochs on images scaled down by low_res_scale "
                                    "(as low_res_epochs for the MoE; 0: every epoch at full size)", lambda v: v >= 0, ">= 0"),
    # merge
    "bn_recalibration_batches": Param(int, 8, "training batches used to re-estimate BatchNorm statistics: the merged "
                                      "backbone's, and after an epoch on smaller images (low_res_epochs) the "
                                      "model's at full size before it is validated (0: never)", lambda v: v >= 0, ">= 0"),
    "classifier_from_teachers": Param(bool, True, "start the classifier from the teachers' heads (else random)"),
    "merge.alignment": Param.choice("zip", "match the teachers' channels before averaging their backbones: "
                                    "permute (activation matching, one permutation per layer), zip (correlated channels merged, also within "
                                    "a teacher: ZipIt!) or none (plain mean)",
                                    ALIGNMENTS),
    "merge.alignment_images": Param(int, 500, "training images the teachers run on to correlate their channels "
                              "(merge.alignment: permute or zip)", lambda v: v >= 2, ">= 2"),
    "merge.alignment_rounds": Param(int, 3, "rounds of re-matching every teacher to the others after the first match "
                              "(three or more teachers)", lambda v: v >= 0, ">= 0"),
    "merge.router_init": Param.choice("fitted", "fitted: the router learns at merge time to send each image to the experts "
                                "of the teachers that hold its class; fresh: equal gates", ROUTER_INITS),
    "merge.router_fit_steps": Param(int, 500, "merge.router_init fitted: steps of fitting the router on cached training features",
                              lambda v: v >= 1, ">= 1"),
    "merge.router_uniform_share": Param(float, 0.5, "merge.router_init fitted: share of equal gates in the router's "
                                  "fitting targets (0: each image to its teachers' experts only; more keeps every "
                                  "expert learning from every image)", lambda v: 0 <= v <= 1, "between 0 and 1"),
    "merge.classifier_fit_steps": Param(int, 500, "steps of fitting the classifier on cached training features at merge "
                                  "time (0: keep it as built)", lambda v: v >= 0, ">= 0"),
    "merge.fit_images": Param(int, 0, "training images whose cached features the router and classifier fits "
                              "read, in the merge and in its check against a random start (0: all of them; the "
                              "feature passes over them are most of a merge's time on a CPU, but fewer images "
                              "start the merged model lower and make the check more lenient)", lambda v: v >= 0, ">= 0"),
    "merge.min_odds_ratio": Param(float, 1.3, "how many times the odds of a right answer on validation (right : wrong) "
                                  "of scratch's random weights, given the same calibration (BatchNorm statistics, "
                                  "router and classifier fits), the merged model's odds must be, or training starts "
                                  "from those random weights as scratch does: the teachers then add little a random "
                                  "start lacks (0: no check)", lambda v: v >= 0, ">= 0"),
    "gate_noise_std": Param(float, 0.1, "std of the Gaussian noise added to gating logits during training",
                            lambda v: v >= 0, ">= 0"),
    # MoE training: the original project's names, meanings and defaults
    "num_epochs": Param(int, 100, "number of training epochs (original default 100)", lambda v: v >= 1, ">= 1"),
    "lr": Param(float, 0.001, "learning rate for the optimizer (original default 0.001)", _pos, "> 0"),
    "warmup_epochs": Param(float, 0.0, "epochs over which the learning rate rises linearly from 0 to lr at the start "
                           "of training (0: none, as the original)", lambda v: v >= 0, ">= 0"),
    "weight_decay": Param(float, 1e-4, "weight decay for regularisation (original default 1e-4)", lambda v: v >= 0, ">= 0"),
    "weight_decay_scope": Param.choice("all", "which weights decay (teachers and MoE): all (the original) or matrices "
                                       "(conv and linear weights; BatchNorm parameters and biases are left alone)",
                                       DECAY_SCOPES),
    "vector_lr_scale": Param(float, 1.0, "the MoE's BatchNorm parameters and biases (tensors of one dimension) learn "
                             "at this multiple of lr (1: the original's one rate; airbench raises it)", _pos, "> 0"),
    "label_smoothing": Param(float, 0.0, "label smoothing of the MoE's task loss (0: the original's cross-entropy)",
                             lambda v: 0 <= v < 1, "0 <= value < 1"),
    "ema_decay": Param(float, 0.0, "keep an exponential moving average of the weights with this decay per step and "
                       "validate, select and save it as the model (0: off; 0.99-0.999 are usual)",
                       lambda v: 0 <= v < 1, "0 <= value < 1"),
    "flips": Param.choice("random", "training images' horizontal flips: random (the original: each image mirrored with "
                          "probability 1/2 in every epoch) or alternating (a random half mirrored in even epochs, the "
                          "other half in odd ones: each image seen both ways over any two epochs)", FLIPS),
    "low_res_epochs": Param(int, 0, "the first epochs train on images scaled down by low_res_scale (progressive "
                            "resizing: at 0.5 an epoch takes about a third of the time; 0: every epoch at full size, "
                            "as the original)", lambda v: v >= 0, ">= 0"),
    "low_res_scale": Param(float, 0.5, "low_res_epochs: the training images' side, as a share of the task's image size",
                           lambda v: 0 < v <= 1, "0 < value <= 1"),
    "tta_flip": Param(bool, False, "evaluate and predict: average the predictions for each image and its mirror image"),
    "tta_shift": Param(int, 0, "evaluate and predict: also average over each image (and its mirror image) moved this "
                       "many pixels up-left and down-right, edges mirrored (0: off)", lambda v: 0 <= v <= 4,
                       "0 <= value <= 4 (the training crops move images at most 4 pixels)"),
    "patience": Param(int, 20, "epochs without a better validation accuracy before early stopping (original default 20)",
                      lambda v: v >= 1, ">= 1"),
    "batch_size": Param(int, 32, "batch size for training (original default 32)", lambda v: v >= 2,
                        ">= 2 (BatchNorm needs two samples)"),
    "seed": Param(int, 100, "random seed for reproducibility (original default 100)", lambda v: v >= 0, ">= 0"),
    "model_name": Param(str, "merged_moe", "name of the saved model file (original default merged_moe)",
                        lambda v: bool(v) and "/" not in v and not v.startswith("."), "a plain file name"),
    "expert_analysis_interval": Param(int, 10, "write the expert analysis every N epochs (original default 10)",
                                      lambda v: v >= 1, ">= 1"),
    "diversity_weight": Param(float, 0.1, "diversity of expert specialisation; range 0.05-0.2, default 0.1: higher "
                              "spreads inputs over experts but may cost accuracy, lower lets experts specialise and "
                              "risks collapse", lambda v: v >= 0, ">= 0"),
    "balance_weight": Param(float, 0.5, "load balancing between experts; range 0.3-1.0, default 0.5: higher enforces "
                            "equal use, lower allows uneven use", lambda v: v >= 0, ">= 0"),
    "initial_temperature": Param(float, 2.0, "starting gating temperature; range 1.5-4.0, default 2.0: higher uses "
                                 "all experts early and prevents early collapse", _pos, "> 0"),
    "final_temperature": Param(float, 0.5, "final gating temperature; range 0.3-1.0, default 0.5: lower makes experts "
                               "more specialised, higher keeps selection soft", _pos, "> 0"),
    # which method trains the MoE (for comparisons)
    "method": Param.choice("moe", "moe: merge the teachers, then train with the original's three losses; distill: the "
                           "same plus learning from the frozen teachers' soft predictions (kd_weight, "
                           "kd_temperature); scratch: the same architecture from random weights", METHODS),
    "kd_weight": Param(float, 1.0, "method distill: weight of the distillation term (0 = the moe objective exactly)",
                       lambda v: v >= 0, ">= 0"),
    "kd_temperature": Param(float, 4.0, "method distill: softmax temperature of teachers and student in the "
                            "distillation term", _pos, "> 0"),
    "kd_teacher_runtime": Param.choice("auto", "method distill: what runs the frozen course-CNN teachers on each "
                                       "batch; auto: ONNX Runtime on a CPU (the same answers, sooner), torch on a GPU",
                                       TEACHER_RUNTIMES),
    "kd_targets": Param.choice("crops", "method distill: crops: the teachers run on every augmented batch; images: "
                               "once, as the first epoch starts, on each training image and its mirror image, and each crop "
                               "learns from its image's predictions (the teachers' cost paid once)", KD_TARGETS),
    # where training runs
    "processes": Param(int, 1, "processes that train and pretrain run in on this machine (torchrun; gloo on CPU, "
                       "NCCL on GPUs, one GPU each); 1 = one plain process", lambda v: v >= 1, ">= 1"),
    # the comparison of methods and ablations (comparison/dvc.yaml)
    "comparison.task": Param(str, "A", "the task whose methods and ablations `dvc repro comparison/dvc.yaml` compares",
                             lambda v: bool(NAME_PATTERN.match(v)), "a task name"),
    "comparison.variants": Param(dict, {"moe": {}}, "the variants the comparison trains: name -> the parameters it "
                                 "changes ({} = params.yaml as it is)", lambda v: bool(v), "at least one variant"),
    "precision": Param.choice("auto", "auto (bf16 where the hardware runs it fast, else fp32), bf16 or fp32", PRECISIONS),
}


# what a comparison variant may change: how the model is made and trained, never the data or the task
# (tests/test_dvc_yaml.py checks this is what the variant stage reads, less the data split's keys)
VARIANT_KEYS = {"method", "kd_weight", "kd_temperature", "kd_teacher_runtime", "kd_targets", "bn_recalibration_batches", "classifier_from_teachers",
                "gate_noise_std", "num_epochs", "lr", "warmup_epochs", "weight_decay", "weight_decay_scope",
                "vector_lr_scale", "label_smoothing", "ema_decay", "flips", "low_res_epochs", "low_res_scale", "tta_flip", "tta_shift", "patience",
                "batch_size", "seed",
                "diversity_weight", "balance_weight", "initial_temperature", "final_temperature", "precision",
                *(k for k in SCHEMA if k.startswith("merge."))}


def default_of(name: str):
    return SCHEMA[name].default


def param_of(f) -> str:
    """The parameter a settings dataclass field stands for: its ``param`` metadata, else its own name."""
    return f.metadata.get("param", f.name)


def param_names(cls) -> tuple[str, ...]:
    """The parameters a settings dataclass is built from (for a stage's ``@reads``)."""
    return tuple(param_of(f) for f in fields(cls) if param_of(f) in SCHEMA)


def settings_from(cls, p: dict, **given):
    """An instance of the settings dataclass ``cls`` from the parameter values ``p``: strict, a parameter
    missing from ``p`` is an error and never a default. ``given``: fields that are not parameters."""
    values = dict(given)
    for f in fields(cls):
        if f.name in given:
            continue
        name = param_of(f)
        if name not in p:
            raise MoEError(f"{cls.__name__}: parameter '{name}' was not read (add it to the stage's @reads)")
        values[f.name] = p[name]
    return cls(**values)


def flatten(raw: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in raw.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not (key in SCHEMA and SCHEMA[key].kind is dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _checked(key: str, value, origin: str):
    """The value, as its declared type (an int where a float is declared is widened); raises on a fault."""
    if key not in SCHEMA:
        close = difflib.get_close_matches(key, SCHEMA, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise MoEError(f"{origin}: unknown parameter '{key}'{hint}")
    p = SCHEMA[key]
    if p.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, p.kind) or (p.kind is int and isinstance(value, bool)):
        raise MoEError(f"{origin}: parameter '{key}' must be {p.kind.__name__}, got {value!r}")
    if not p.check(value):
        raise MoEError(f"{origin}: parameter '{key}' = {value!r} is out of range ({p.rule})")
    return value


def _check_variants(variants: dict, origin: str) -> None:
    """Each comparison variant: a plain name and valid values for parameters a variant may change."""
    for name, changes in variants.items():
        where = f"{origin}: comparison variant '{name}'"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise MoEError(f"{where}: a name is letters, digits, '_' and '-'")
        if not isinstance(changes, dict):
            raise MoEError(f"{where}: expected a mapping of parameters to change, e.g. {{diversity_weight: 0.0}}")
        for key, value in changes.items():
            if key not in VARIANT_KEYS:
                allowed = ", ".join(sorted(VARIANT_KEYS))
                raise MoEError(f"{where}: '{key}' cannot change per variant (one of: {allowed})")
            changes[key] = _checked(key, value, where)


def validate(values: dict[str, Any], origin: str = "params.yaml") -> dict[str, Any]:
    """Check every key, type and range; return the flat dict. Raises MoEError on the first fault."""
    for key, value in values.items():
        values[key] = _checked(key, value, origin)
    missing = [k for k in SCHEMA if k not in values]
    if missing:
        raise MoEError(f"{origin}: missing parameter '{missing[0]}'")
    _check_variants(values["comparison.variants"], origin)
    if values["final_temperature"] > values["initial_temperature"]:
        warnings.warn(f"{origin}: final_temperature {values['final_temperature']} is above initial_temperature "
                      f"{values['initial_temperature']}: the gate will get softer during training", stacklevel=2)
    return values


def load_params(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise MoEError(f"{path}: parameter file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise MoEError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise MoEError(f"{path}: expected a mapping of parameters")
    values = flatten(raw)
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = v
    return validate(values, str(path))
