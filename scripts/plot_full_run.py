"""Validation accuracy against wall-clock minutes of a whole `dvc repro` (teachers included), read from
its console output (the per-epoch lines of pretrain and train, the merge's line, the final test figure).

    python scripts/plot_full_run.py docs/results/real_task_a_full_run/console.log \\
        docs/results/real_task_a_full_run/accuracy_vs_minutes.png --goal 78.87
    python scripts/plot_full_run.py docs/results/task_b_today/dvc_repro.log \\
        docs/results/task_b_today/accuracy_vs_minutes.png --data "the stand-in: Tiny ImageNet images"
    python scripts/plot_full_run.py new/console.log new/vs_old.png --baseline old/console.log \\
        --names "12 small epochs" "8 small epochs"    # a second run in grey, to compare minutes
"""

import argparse
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EPOCH = re.compile(r"^(teacher (?P<teacher>\S+)|MoE (?P<task>\S+)) epoch (?P<epoch>\d+)/\d+ .* val (?P<val>[\d.]+)%"
                   r"( \(trained on (?P<px>\d+)px images\))?\s+(?P<sec>[\d.]+) s")
MERGE = re.compile(r"^merged .* in (?P<sec>\d+) s .*validation accuracy before training (?P<val>[\d.]+)%")
TEST = re.compile(r"^Task (?P<task>\S+): (?P<acc>[\d.]+)% of (?P<n>\d+) test")


def task_name(log: str) -> str:
    """The task the console's MoE trained (its epoch lines and its test line say): titles say which."""
    for line in log.splitlines():
        if (m := EPOCH.match(line) or TEST.match(line)) and m["task"]:
            return m["task"]
    return "?"


def read_run(log: str):
    """Curves (name -> [(minutes, validation %, side of the images trained on or None)]), the test figure,
    and the minutes at the end of training."""
    curves, clock, test = {}, 0.0, None
    for line in log.splitlines():
        if m := EPOCH.match(line):
            clock += float(m["sec"]) / 60
            curves.setdefault(f"teacher {m['teacher']}" if m["teacher"] else "MoE", []).append(
                (clock, float(m["val"]), int(m["px"]) if m["px"] else None))
        elif m := MERGE.match(line):
            clock += float(m["sec"]) / 60
            curves["MoE"] = [(clock, float(m["val"]), None)]
        elif m := TEST.match(line):
            test = float(m["acc"])
    return curves, test, clock


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--goal", type=float, help="a reference accuracy to draw (e.g. the original's published one)")
    parser.add_argument("--data", default="real images", help="what the images were, for the title")
    parser.add_argument("--baseline", type=Path, help="another run's console output, drawn in grey beneath")
    parser.add_argument("--names", nargs=2, metavar=("RUN", "BASELINE"), default=("this run", "baseline"),
                        help="with --baseline: what to call the two runs in the legend")
    args = parser.parse_args()
    for console in filter(None, [args.log, args.baseline]):
        if not console.is_file():
            parser.error(f"{console}: no such console log")
    log = args.log.read_text()
    curves, test, minutes = read_run(log)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    colours = iter(plt.get_cmap("tab10").colors)
    full_size = max((px or 0 for points in curves.values() for _, _, px in points), default=0)
    any_small = False
    if args.baseline:
        base_curves, base_test, base_minutes = read_run(args.baseline.read_text())
        for name, points in base_curves.items():
            xs, ys, _ = zip(*points)
            ax.plot(xs, ys, ls="--", lw=1.6 if name == "MoE" else 0.9, color="silver", zorder=1,
                    label=f"{args.names[1]}: all curves, {base_minutes:.0f} min of epochs" if name == "MoE" else None)
        if base_test is not None:
            ax.scatter([base_minutes], [base_test], marker="*", s=160, facecolors="white", edgecolors="grey",
                       zorder=5, label=f"{args.names[1]} on the test set: {base_test:.2f}%")
    for name, points in curves.items():
        xs, ys, _ = zip(*points)
        colour = next(colours)
        ax.plot(xs, ys, marker="o", ms=3, lw=2 if name == "MoE" else 1.2, color=colour,
                label=f"{name} (own classes)" if name.startswith("teacher")
                else f"{args.names[0] + ': ' if args.baseline else ''}MoE, all the task's classes (from the merge)")
        small = [(x, y) for x, y, px in points if px and px < full_size]
        if small:  # low_res_epochs: validated at full size after training on smaller images
            ax.scatter(*zip(*small), s=30, facecolors="white", edgecolors=colour, zorder=4)
            any_small = True
    if any_small:
        ax.scatter([], [], s=30, facecolors="white", edgecolors="grey", label="epoch trained on smaller images")
    if test is not None:
        who = f"{args.names[0]}: MoE" if args.baseline else "MoE"
        ax.scatter([minutes], [test], marker="*", s=160, color="black", zorder=5, label=f"{who} on the test set: {test:.2f}%")
    if args.goal:
        ax.axhline(args.goal, ls="--", color="grey", lw=1)
        top = max([args.goal] + [y for points in curves.values() for _, y, _ in points] + ([test] if test else []))
        ax.set_ylim(top=top + 2.5)  # room for the goal's label under the title
        ax.text(1, args.goal + 0.6, f"original, published: {args.goal}% (its own teachers, 100 epochs, best epoch chosen on test)", color="grey", fontsize=8)
    ax.set_xlabel("minutes of 2 CPU cores since `dvc repro` started (epochs only; stage start-up not counted)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"Task {task_name(log)} ({args.data}), {'two runs' if args.baseline else 'one `dvc repro`'}:\n"
                 "teachers trained here, merged, then the MoE", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
