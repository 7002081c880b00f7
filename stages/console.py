"""What a person watching sees: messages, progress bars, a line per epoch, predict's table. Display
only: nothing here changes an output, so the pipeline's stages do not depend on this file
(tests/test_dvc_yaml.py)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

console = Console(stderr=True, highlight=False)  # progress, messages, tables about the work done
stdout = Console(highlight=False)  # what a command answers (predict, summary): stdout, to pipe or save


def quiet() -> bool:
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class RichProgress:
    """A bar within each epoch (on a terminal) and one line after each epoch that stays on screen and
    shows when piped: losses, accuracies, the epoch's seconds and the time left for the whole run, and
    for ``runs_after`` more runs like it (the teachers still to train after this one)."""

    active: list["RichProgress"] = []  # bars to close on Ctrl-C

    def __init__(self, label: str, runs_after: int = 0):
        self.label = label
        self.runs_after = runs_after
        self.bar = None
        self.task = None
        self.epoch_seconds: list[float] = []
        self.epoch_work: list[float] = []  # of the epochs timed so far, as in ``work``

    def start_epoch(self, epoch, num_epochs, num_batches, image_sizes):
        self.epoch, self.num_epochs, self.num_batches = epoch, num_epochs, num_batches
        self.work = [side * side for side in image_sizes]  # an epoch's work: its images' pixels (low_res_epochs)
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
        """Seconds per unit of work so far, times the work left: epochs on smaller images count for less."""
        this_epoch = self.work[self.epoch]
        per_work = (sum(self.epoch_seconds) / sum(self.epoch_work) if self.epoch_seconds
                    else (time.perf_counter() - self.started) / max(done_in_epoch * this_epoch, 1e-9))
        work_left = (this_epoch * (1 - done_in_epoch) + sum(self.work[self.epoch + 1:])
                     + self.runs_after * sum(self.work))
        return per_work * work_left

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
        self.epoch_work.append(self.work[self.epoch])
        terms = [f"{k[:-5]} {v:.3f}" for k, v in record.items() if k.endswith("_loss") and k not in ("train_loss", "val_loss")]
        line = (f"{self.label} epoch {record['epoch']}/{self.num_epochs}  loss {record['train_loss']:.3f}"
                + (f" ({', '.join(terms)})" if terms else "")
                + f"  train {record['train_accuracy']:.1f}%  val {record['val_accuracy']:.1f}%"
                + (f" (trained on {record['image_size']}px images)" if "image_size" in record else "")
                + f"  {self.epoch_seconds[-1]:.1f} s  left {_clock(self._run_left(1.0))}")
        console.print(line, soft_wrap=True, markup=False)


def say(msg: str) -> None:
    """One message, one line: a log or a pipe gets it whole, not wrapped at 80 columns."""
    console.print(msg, soft_wrap=True)


def prediction_table(rows: list[dict], experts: list[str], title: str, width: int) -> Group:
    """One line per image at any terminal width and with any number of experts: the best class in its
    own column, the runners-up and the gates compact (in expert order, named in the legend below)."""
    gate_text = lambda w: "1.0" if w >= 0.995 else f"{w:.2f}"[1:]  # .62: three characters an expert
    columns = {"image": [], "class": [], "p": [], "runners-up": [], "expert": [],
               " ".join(f"{i + 1:<3}" for i in range(len(experts))).rstrip(): []}
    for r in (r for r in rows if "error" not in r):
        best, *others = r["top"]
        gates = list(r["gates"].values())
        leader = max(range(len(gates)), key=gates.__getitem__)
        for cells, text in zip(columns.values(), (
                Path(r["image"]).name, best["class"], f"{best['probability']:.0%}",
                ", ".join(f"{g['class']} {g['probability']:.0%}" for g in others), f"{leader + 1} {experts[leader]}",
                " ".join(gate_text(w) for w in gates))):
            cells.append(text)
    widths = {name: max(map(len, [name, *cells])) for name, cells in columns.items()}
    excess = sum(widths.values()) + 2 * (len(columns) - 1) - width  # two spaces between columns
    for name, floor in (("runners-up", 12), ("image", 12), ("expert", 8), ("runners-up", 0), ("class", 10)):
        cut = max(0, min(excess, widths[name] - floor))
        widths[name] -= cut
        excess -= cut
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    for name, cells in columns.items():
        if widths[name]:
            table.add_column(name, justify="right" if name == "p" else "left", no_wrap=True, overflow="ellipsis",
                             width=widths[name])
    for row in zip(*columns.values()):
        table.add_row(*[cell for name, cell in zip(columns, row) if widths[name]])
    legend = Text("gate weight per expert: " + "  ".join(f"{i + 1}={name}" for i, name in enumerate(experts)))
    return Group(table, legend)
