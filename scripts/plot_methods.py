"""Test accuracy of each method against epochs and against minutes, from `scripts/merge_table.py train`
records, with the teachers' ensemble and oracle (its `baselines` record) drawn as lines.

    python scripts/plot_methods.py docs/results/task_b_long/runs.jsonl docs/results/task_b_long/accuracy.png \\
        --title "Task B stand-in: 16 epochs of each method"
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from moe.base.formats import atomic_path  # noqa: E402


def read_records(path: Path):
    """Training records (one per method, file order) and the baselines record's figures, if any."""
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (write it with `scripts/merge_table.py`)")
    runs, baselines = [], {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise SystemExit(f"{path}:{number}: not a JSON record ({e.msg})") from None
        if "per_epoch" in record:
            runs.append(record)
        elif "teacher ensemble / oracle" in record:
            baselines = record["teacher ensemble / oracle"]
    return runs, baselines


def curve(run):
    """(epoch, minutes, test %) from the merge (epoch 0) to the last epoch."""
    points = [run["start"] | {"epoch": 0}] + run["per_epoch"]
    return [(p["epoch"], p["seconds"] / 60, p["test"]) for p in points]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--title", default="Test accuracy of each method")
    args = parser.parse_args()
    runs, baselines = read_records(args.records)
    if not runs:
        raise SystemExit(f"{args.records}: no training records (write them with `scripts/merge_table.py train`)")
    fig, (by_epoch, by_minute) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120, sharey=True)
    colours = dict(zip(["moe", "distill", "scratch"], plt.get_cmap("tab10").colors))
    for run in runs:
        epochs, minutes, test = zip(*curve(run))
        label = f"{run['method']}: {run['selected']['test']:.2f}% selected (epoch {run['best_epoch']})"
        style = dict(marker="o", ms=3, lw=2 if run["method"] == "moe" else 1.3, color=colours.get(run["method"]))
        by_epoch.plot(epochs, test, label=label, **style)
        by_minute.plot(minutes, test, **style)
    for name, style in (("oracle", ":"), ("ensemble", "--")):
        if name in baselines:
            for ax in (by_epoch, by_minute):
                ax.axhline(baselines[name], ls=style, color="grey", lw=1)
            by_epoch.text(max(r["per_epoch"][-1]["epoch"] for r in runs), baselines[name] + 0.6,
                          f"teachers' {name}: {baselines[name]:.2f}%", color="grey", fontsize=8, ha="right")
    by_epoch.set_xlabel("epoch (0: the merge; scratch starts from random weights)")
    by_minute.set_xlabel("minutes of merge and training (test passes not counted)")
    by_epoch.set_ylabel("test accuracy (%)")
    for ax in (by_epoch, by_minute):
        ax.grid(alpha=0.3)
    by_epoch.legend(fontsize=8, loc="lower right")
    fig.suptitle(args.title)
    fig.tight_layout()
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
