"""What every stage shares: parameters, paths, one-line errors, progress bars."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from moe.errors import MissingFile, MoEError
from moe.params import SCHEMA, load_params
from moe.tasks import TaskSpec, load_task

console = Console(stderr=True, highlight=False)  # progress, messages, tables about the work done
stdout = Console(highlight=False)  # what a command answers (predict, summary): stdout, to pipe or save
TASKS_DIR = Path("tasks")


TASK_OPTION = typer.Option(..., "--task", "-t", help="task name (tasks/NAME.yaml) or path of a task spec YAML")
PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="parameter file")


def heading(spec: TaskSpec) -> str:
    """"Task A", or "Task A (demo data)" where the data is generated: demo figures must say so."""
    from moe.data import data_origin

    return f"Task {spec.name}" + (" (demo data)" if data_origin(Paths(spec.name).data) == "demo" else "")


def task_spec(name: str) -> TaskSpec:
    path = Path(name) if name.endswith((".yaml", ".yml")) else TASKS_DIR / f"{name}.yaml"
    return load_task(path)


@functools.lru_cache(maxsize=1)
def _params_in_force() -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_params(Path("params.yaml"))
    except (MoEError, OSError):
        return {}


def _value_in_force(name: str):
    """The value params.yaml in this folder gives (shown as the option's default), else the declared one."""
    return _params_in_force().get(name, SCHEMA[name].default)


def _option(name: str) -> inspect.Parameter:
    """A keyword parameter whose Typer option is --NAME (dots become dashes), with meaning, range and default."""
    p = SCHEMA[name]
    help_text = escape(f"{p.help} [{p.rule or 'any'}; params.yaml: {name}]")
    option = typer.Option(None, "--" + name.replace(".", "-").replace("_", "-"), help=help_text,
                          show_default=str(_value_in_force(name)))
    return inspect.Parameter(name.replace(".", "__"), inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=Optional[p.kind])


def reads(*names: str):
    """Declare the parameters a stage reads, once. Each becomes a command-line option that overrides
    params.yaml; the whole file is validated before the stage starts; the stage gets ``p``, a dict of
    exactly these values (reading any other is a bug that fails loudly). dvc.yaml lists the same
    names (tests/test_dvc_yaml.py checks)."""

    names = tuple(dict.fromkeys(names))  # settings dataclasses may share a parameter (seed)

    def decorate(fn):
        signature = inspect.signature(fn)
        kept = [q for q in signature.parameters.values() if q.name != "p"]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            given = {name: kwargs.pop(name.replace(".", "__"), None) for name in names}
            values = params(kwargs.get("params_file", Path("params.yaml")), **given)
            return fn(*args, p={name: values[name] for name in names}, **kwargs)

        options = [_option(n) for n in names if SCHEMA[n].kind is not dict]  # a mapping is edited in params.yaml
        wrapper.__signature__ = signature.replace(parameters=kept + options)
        wrapper.reads = names
        return wrapper

    return decorate


def params(path: Path, **overrides) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = load_params(path, overrides)
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}")
    return values


class Paths:
    """Where a task's files go; every stage agrees on these."""

    def __init__(self, task: str):
        self.task = task
        self.data = Path("data") / task
        self.models = Path("models") / task
        self.teachers = self.models / "teachers"
        self.merged = self.models / "merged.pth"
        self.predictions = Path("predictions") / f"{task}.pth"  # evaluate's one pass over the test set
        self.checkpoints = Path("checkpoints") / task
        self.train_state = self.checkpoints / "train_state.pth"  # resumable state while train runs
        self.live = Path("dvclive") / task
        self.plots = Path("plots") / task
        self.analysis = self.plots / "analysis"  # expert heatmaps during training
        self.metrics = Path("metrics")

    def model(self, model_name: str) -> Path:
        return self.models / f"{model_name}.pth"

    def run(self, variant: str) -> Path:
        """The record of one comparison variant (comparison/dvc.yaml)."""
        return Path("runs") / self.task / f"{variant}.json"

    def variant_state(self, variant: str) -> Path:
        return self.checkpoints / f"variant_{variant}.pth"  # resumable state while a variant trains

    def teacher(self, index: int) -> Path:
        return self.teachers / f"teacher_{index + 1}.pth"

    def producer(self, path: Path) -> str | None:
        """The stage that writes ``path``, for the hint after a missing file."""
        path = Path(path)
        for folder, stage in ((self.data, "fetch"), (self.teachers, "pretrain"), (self.merged, "merge"),
                              (self.predictions, "evaluate"), (self.models, "train"), (Path("runs") / self.task, "variant")):
            if path == folder or folder in path.parents:
                return stage
        return None


def same_command() -> list[str]:
    """This command line again, as the program torchrun runs in each process."""
    return ["-m", "stages.cli", *sys.argv[1:]]


class NullLive:
    """Stands in for DVCLive on ranks other than zero."""

    def __init__(self):
        self.summary = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def log_metric(self, *args, **kwargs):
        pass

    def next_step(self):
        pass


def quiet() -> bool:
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class RichProgress:
    """A bar within each epoch (on a terminal) and one line after each epoch that stays on screen and
    shows when piped: losses, accuracies, the epoch's seconds and the time left for the whole run."""

    active: list["RichProgress"] = []  # bars to close on Ctrl-C

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.task = None
        self.epoch_seconds: list[float] = []

    def start_epoch(self, epoch, num_epochs, num_batches):
        self.epoch, self.num_epochs, self.num_batches = epoch, num_epochs, num_batches
        self.n, self.loss, self.acc = 0, 0.0, 0.0
        self.started = time.perf_counter()
        if quiet():
            return
        self.bar = Progress(TextColumn(f"{self.label} epoch {epoch + 1}/{num_epochs}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[figures]}"), TextColumn("run left {task.fields[left]}"),
                            console=console, transient=True)
        self.bar.start()
        RichProgress.active.append(self)
        self.task = self.bar.add_task("", total=num_batches, figures="loss -  acc -", left="-")

    def _run_left(self, done_in_epoch: float) -> float:
        per_epoch = (sum(self.epoch_seconds) / len(self.epoch_seconds) if self.epoch_seconds
                     else (time.perf_counter() - self.started) / max(done_in_epoch, 1e-9))
        in_epoch = per_epoch * (1 - done_in_epoch)
        return in_epoch + per_epoch * (self.num_epochs - self.epoch - 1)

    def advance(self, loss, accuracy):
        self.n += 1
        self.loss += (loss - self.loss) / self.n
        self.acc += (accuracy - self.acc) / self.n
        if self.bar:
            self.bar.update(self.task, advance=1, figures=f"loss {self.loss:.3f}  acc {self.acc:.1%}",
                            left=_clock(self._run_left(self.n / self.num_batches)))

    def stop(self):
        if self.bar:
            self.bar.stop()
            self.bar = None
            RichProgress.active.remove(self)

    def end_epoch(self, record: dict):
        self.stop()
        self.epoch_seconds.append(time.perf_counter() - self.started)
        terms = [f"{k[:-5]} {v:.3f}" for k, v in record.items() if k.endswith("_loss") and k not in ("train_loss", "val_loss")]
        line = (f"{self.label} epoch {record['epoch']}/{self.num_epochs}  loss {record['train_loss']:.3f}"
                + (f" ({', '.join(terms)})" if terms else "")
                + f"  train {record['train_accuracy']:.1f}%  val {record['val_accuracy']:.1f}%"
                + f"  {self.epoch_seconds[-1]:.1f} s  left {_clock(self._run_left(1.0))}")
        console.print(line, soft_wrap=True, markup=False)


def say(msg: str) -> None:
    console.print(msg)


def _hint(error: MoEError) -> str:
    """Which command makes a missing input, when it is one of the pipeline's own files."""
    if isinstance(error, MissingFile):
        parts = Path(error.path).parts
        task = Path(parts[1]).stem if len(parts) > 1 else ""
        producer = Paths(task).producer(Path(error.path)) if task else None
        if producer == "variant":
            return (f" (the comparison writes it: run `moe variant --task {task} --name {Path(error.path).stem}` "
                    "or `dvc repro comparison/dvc.yaml` first)")
        if producer:
            return f" ({producer} writes it: run `moe {producer} --task {task}` or `dvc repro` first)"
    return ""


def stage(fn):
    """Turn MoEError into one red line and exit 1; Ctrl-C into a short note and exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MoEError as e:
            # one line whatever the width, and a file name with [brackets] is not taken for markup
            console.print(f"[bold red]error:[/] {escape(str(e) + _hint(e))}", soft_wrap=True)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            for bar in list(RichProgress.active):
                bar.stop()
            console.print("[yellow]interrupted[/]: the last finished epoch is saved; run the same command "
                          "(or dvc repro) again to resume")
            raise typer.Exit(130)

    return wrapper
