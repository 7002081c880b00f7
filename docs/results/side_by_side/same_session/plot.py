"""Test accuracy against seconds from the start: the original's training loop (its console, timestamped)
beside this project's runs (``scripts/merge_table.py train`` records), one panel per kernel set.

    python docs/results/side_by_side/same_session/plot.py   # writes accuracy_vs_seconds.png beside it

Dashed: the original's best within its first five (and ten) epochs; a ring where a run of this project
first reaches it. This project's first epoch trains on 16 px images (``low_res_epochs: 1``), so it dips
(less in the third session's runs: that small epoch is now scored with full-size BatchNorm statistics).
"""

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
ORIGINAL_EPOCH = re.compile(r"^\[\s*(?P<sec>[\d.]+)s\] E(?P<epoch>\d+) .*Test:(?P<test>[\d.]+)%")


def original_curve(log: Path) -> list[tuple[float, float]]:
    return [(float(m["sec"]), float(m["test"])) for line in log.read_text().splitlines()
            if (m := ORIGINAL_EPOCH.match(line))]


def our_curves(records: Path) -> list[list[tuple[float, float]]]:
    """One curve per run (seed): the merged start, then each epoch."""
    runs = [json.loads(line) for line in records.read_text().splitlines()]
    return [[(r["start"]["seconds"], r["start"]["test"])] + [(e["seconds"], e["test"]) for e in r["per_epoch"]]
            for r in runs]


PANELS = [  # title, the original's consoles, this project's records (label, files), where the goal labels start
    ("N = 5, AVX-512 kernels: the original in fp32, this project in bf16",
     ["original_before.log", "original_after.log", "original_third.log"],
     [("its check included", ["ours_bf16_low_res.jsonl"]),
      ("merge.min_odds_ratio=0", ["ours_bf16_low_res_no_check.jsonl"])], 0.42),
    ("N = 10, AVX-512 kernels: the original in fp32, this project in bf16",
     ["original_10_epochs.log", "original_10_epochs_next_session.log"],
     [("its check included", ["ours_bf16_16_epochs.jsonl", "ours_bf16_16_epochs_seeds_next_session.jsonl"])], 0.01),
    ("N = 5 and 10, AVX2 kernels forced, both in fp32",
     ["original_10_epochs_avx2.log", "original_5_epochs_avx2_next_session.log",
      "original_10_epochs_avx2_third_session.log"],
     [("its check included", ["ours_avx2_16_epochs.jsonl", "ours_avx2_seeds_next_session.jsonl",
                              "ours_avx2_seeds_10_epochs_third_session.jsonl"])], 0.01),
]


def main():
    fig, axes = plt.subplots(1, len(PANELS), figsize=(18, 5), dpi=120)
    for ax, (title, originals, ours, label_x) in zip(axes, PANELS):
        runs = [original_curve(HERE / name) for name in originals if (HERE / name).exists()]
        for i, curve in enumerate(runs):
            ax.plot(*zip(*curve), color="0.35", marker="s", ms=3, lw=1.4, label="the original's loop" if i == 0 else None)
        goals = {n: max(max(test for _, test in curve[:n]) for curve in runs if len(curve) >= n)
                 for n in (5, 10) if any(len(curve) >= n for curve in runs)}  # epochs -> the original's best in them
        for n, goal in goals.items():
            ax.axhline(goal, color="0.35", ls="--", lw=0.8)
            ax.text(label_x, goal + 0.5, f"the original's best in {n} epochs, {goal:.2f} %", fontsize=8, color="0.25",
                    transform=ax.get_yaxis_transform())  # x in axes fraction, y in data
        for n, goal in goals.items():  # 3x sooner than the original reached it (the mean of its runs)
            reached = [s for curve in runs if len(curve) >= n  # runs of another day may fall short of it
                       if (s := next((s for s, t in curve[:n] if t >= goal), None)) is not None]
            third = sum(reached) / len(reached) / 3
            ax.axvline(third, color="tab:red", ls=":", lw=1)
            ax.text(third, 31 + 4 * (n == 10), f" 3x sooner than its\n {n}-epoch best", fontsize=8, color="tab:red")
        colours = iter(plt.get_cmap("tab10").colors)
        for label, names in ours:
            curves = [curve for name in names if (HERE / name).exists() for curve in our_curves(HERE / name)]
            colour = next(colours)
            for j, curve in enumerate(curves):
                ax.plot(*zip(*curve), color=colour, marker="o", ms=3, lw=1.2, alpha=0.85,
                        label=f"this project, {label}" if j == 0 else None)
                for goal in goals.values():
                    passed = next(((s, t) for s, t in curve if t >= goal), None)
                    if passed:
                        ax.scatter(*passed, s=70, facecolors="none", edgecolors=colour, lw=1.5, zorder=5)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds from the start (merge included)")
        ax.set_ylabel("test accuracy, 1,500 images (%)")
        ax.set_ylim(30, None)
        ax.set_xlim(0, None)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Real Task A, the same given teachers: time to the original's best, both sides in each session (2026-12-05)", fontsize=11)
    fig.tight_layout()
    fig.savefig(HERE / "accuracy_vs_seconds.png")


if __name__ == "__main__":
    main()
