"""Where every stage reads and writes: the one place that names the pipeline's files.

``Paths("${key}")`` spells the same names with DVC's template variables, and
tests/test_dvc_yaml.py checks that both dvc.yaml files declare exactly the outputs named here.
"""

from __future__ import annotations

from pathlib import Path

from moe.base.errors import MoEError
from moe.base.formats import load_json
from moe.base.tasks import TaskSpec

CHECKED = Path("checked") / "params.txt"  # the check stage's output, which every other stage depends on


class Paths:
    """One task's files. ``model_name`` is the trained model's file name (params.yaml)."""

    def __init__(self, task: str, model_name: str = "merged_moe"):
        self.task = task
        self.model_name = model_name
        # inputs and models
        self.data = Path("data") / task
        self.models = Path("models") / task
        self.teachers = self.models / "teachers"
        self.merged = self.models / "merged.pth"
        self.model = self.models / f"{model_name}.pth"
        self.predictions = Path("predictions") / f"{task}.pth"  # evaluate's one pass over the test set
        self.checkpoints = Path("checkpoints") / task
        self.train_state = self.checkpoints / "train_state.pth"  # resumable state while train runs
        # DVC metrics: headline figures only
        self.metrics = Path("metrics")
        self.data_record = self.metrics / f"{task}_data.json"  # fetch: the data's source, classes, test images
        self.teacher_metrics = self.metrics / f"{task}_teachers.json"
        self.merge_metrics = self.metrics / f"{task}_merge.json"
        self.train_metrics = self.metrics / f"{task}_train.json"
        self.test_metrics = self.metrics / f"{task}.json"
        self.baseline_metrics = self.metrics / f"{task}_baselines.json"
        self.routing_metrics = self.metrics / f"{task}_routing.json"
        self.comparison_metrics = self.metrics / f"compare_{task}.json"
        # plot data and figures
        self.plots = Path("plots") / task
        self.teacher_origins = self.plots / "teacher_origins.json"  # per teacher: trained here, or the file given
        self.merge_details = self.plots / "merge.json"
        self.curves = {name: self.plots / f"{name}.csv" for name in ("accuracy", "loss", "gating")}
        self.gate_snapshots = self.plots / "gate_snapshots.json"  # per analysis epoch, mean gate per class
        self.analysis = self.plots / "analysis"  # the snapshots' heatmaps
        self.per_class = self.plots / "per_class.json"
        self.learning_curves = self.plots / "learning_curves.png"
        self.confusion = self.plots / "confusion.png"
        self.per_class_accuracy = self.plots / "per_class_accuracy.png"
        self.sample_predictions = self.plots / "sample_predictions.png"
        self.baselines = self.plots / "baselines.png"
        self.expert_tables = self.plots / "expert_tables.json"
        self.expert_contribution = self.plots / "expert_contribution.png"
        self.expert_accuracy = self.plots / "expert_accuracy.png"
        self.comparison_plot = self.plots / "comparison.png"
        self.comparison_curve = self.plots / "comparison.csv"
        self.runs = Path("runs") / task  # one record per comparison variant
        self.report = Path("reports") / f"{task}.md"

    def teacher_files(self, spec: TaskSpec) -> list[Path]:
        """pretrain's copy of each teacher: a course-CNN .pth, or an ONNX teacher's .onnx."""
        return [self.teachers / f"teacher_{i + 1}.{'onnx' if t.onnx else 'pth'}" for i, t in enumerate(spec.teachers)]

    def run(self, variant: str) -> Path:
        """The record of one comparison variant (comparison/dvc.yaml)."""
        return self.runs / f"{variant}.json"

    def variant_state(self, variant: str) -> Path:
        return self.checkpoints / f"variant_{variant}.pth"  # resumable state while a variant trains

    def outputs(self) -> dict[str, list[Path]]:
        """Every stage's declared outputs (outs, metrics and plots together), as dvc.yaml must list them;
        the comparison's variant stage for the variant named ``${key}``."""
        return {
            "check": [CHECKED],
            "fetch": [self.data, self.data_record],
            "pretrain": [self.teachers, self.teacher_metrics, self.teacher_origins],
            "merge": [self.merged, self.merge_metrics, self.merge_details],
            "train": [self.model, self.train_metrics, *self.curves.values(), self.gate_snapshots],
            "evaluate": [self.predictions, self.test_metrics, self.per_class, self.learning_curves, self.confusion,
                         self.per_class_accuracy, self.sample_predictions],
            "compare": [self.baseline_metrics, self.baselines],
            "analyze": [self.routing_metrics, self.expert_tables, self.expert_contribution, self.expert_accuracy,
                        self.analysis],
            "report": [self.report],
            "comparison/variant": [self.run("${key}")],
            "comparison/comparison": [self.comparison_metrics, self.comparison_plot, self.comparison_curve],
        }

    def producer(self, path: Path) -> str | None:
        """The stage that writes ``path``, for the hint after a missing file."""
        path = Path(path)
        for folder, stage in ((self.data, "fetch"), (self.teachers, "pretrain"), (self.merged, "merge"),
                              (self.predictions, "evaluate"), (self.models, "train"), (self.runs, "variant")):
            if path == folder or folder in path.parents:
                return stage
        return None


def data_source(task: str) -> str:
    """Which source made the task's data ('demo', 'archive', ...), from fetch's record in git, so that
    a clone without the data still knows; 'unknown' before fetch ran."""
    try:
        return str(load_json(Paths(task).data_record)["source"])
    except (MoEError, KeyError, TypeError):
        return "unknown"


def heading(spec: TaskSpec) -> str:
    """"Task A", or "Task A (demo data)" where the data is generated: demo figures must say so."""
    return f"Task {spec.name}" + (" (demo data)" if data_source(spec.name) == "demo" else "")
