"""Test accuracy of each method against epochs and against minutes, from `scripts/merge_table.py train`
records, with the teachers' ensemble and oracle (its `baselines` record) drawn as lines. Runs of one
setting over several seeds are drawn as their mean, with the seeds' range shaded.

    python scripts/plot_methods.py docs/results/task_b_long/runs.jsonl docs/results/task_b_long/accuracy.png \\
        --title "Task B stand-in: 16 epochs of each method"
"""

import argparse
import json
import statistics
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


def settings(runs) -> dict[str, list]:
    """Runs grouped by setting (the method and the changes that differ between runs, the seed aside),
    in file order, each named by what sets it apart (kd_* parameters only for distill, the one method they change)."""
    def changes(run):
        return {k: v for k, v in run.get("changes", {}).items()
                if k != "seed" and (run["method"] == "distill" or not k.startswith("kd_"))}

    varying = sorted({k for run in runs for k in changes(run) if len({json.dumps(changes(r).get(k)) for r in runs}) > 1})
    groups: dict[str, list] = {}
    for run in runs:
        parts = [f"{k.removeprefix('merge.')}={changes(run)[k]}" for k in varying if k in changes(run)]
        groups.setdefault(", ".join([run["method"]] + parts), []).append(run)
    return groups


def mean_curve(group):
    """(epochs, median minutes, mean test %, lowest, highest) over the runs of one setting, up to the shortest
    run (the median: one run slowed by a neighbour on the machine does not move the line)."""
    curves = [curve(run) for run in group]
    length = min(len(c) for c in curves)
    columns = [list(zip(*(c[i] for c in curves))) for i in range(length)]  # per epoch: (epochs, minutes, tests)
    return ([c[0][0] for c in columns], [statistics.median(c[1]) for c in columns],
            [sum(c[2]) / len(c[2]) for c in columns], [min(c[2]) for c in columns], [max(c[2]) for c in columns])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--title", default="Test accuracy of each method")
    args = parser.parse_args()
    runs, baselines = read_records(args.records)
    if not runs:
        raise SystemExit(f"{args.records}: no training records (write them with `scripts/merge_table.py train`)")
    fig, (by_epoch, by_minute) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=120, sharey=True)
    colours = iter(plt.get_cmap("tab10").colors)
    lowest = min(baselines.values(), default=100.0)  # the axis starts below the trained models and the baselines
    for name, group in settings(runs).items():
        epochs, minutes, test, low, high = mean_curve(group)
        lowest = min([lowest] + low[1:])
        selected = sum(r["selected"]["test"] for r in group) / len(group)
        seeds = f", mean of {len(group)} seeds" if len(group) > 1 else ""
        style = dict(marker="o", ms=3, lw=2 if group[0]["method"] == "moe" else 1.3, color=next(colours))
        by_epoch.plot(epochs, test, label=f"{name}: {selected:.2f}% selected{seeds}", **style)
        by_minute.plot(minutes, test, **style)
        if len(group) > 1:  # the seeds' range
            by_epoch.fill_between(epochs, low, high, color=style["color"], alpha=0.15, lw=0)
            by_minute.fill_between(minutes, low, high, color=style["color"], alpha=0.15, lw=0)
    for name, style in (("oracle", ":"), ("ensemble", "--")):
        if name in baselines:
            for ax in (by_epoch, by_minute):
                ax.axhline(baselines[name], ls=style, color="grey", lw=1)
            by_minute.text(by_minute.get_xlim()[1], baselines[name] + 0.6,  # the right panel's lines end early
                           f"teachers' {name}: {baselines[name]:.2f}%", color="grey", fontsize=8, ha="right")
    by_epoch.set_ylim(bottom=max(0.0, lowest - 5))  # scratch's random start (epoch 0) falls below: it says nothing
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
