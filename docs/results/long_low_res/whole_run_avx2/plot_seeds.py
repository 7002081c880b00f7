"""The shipped long schedule's whole runs, one colour per seed: each teacher's and the MoE's validation
accuracy against the minutes since `dvc exp run` started, the test figure at the end, the original's
published figure and the hour. Consoles are read with scripts/plot_full_run.py's parser.

    python docs/results/long_low_res/whole_run_avx2/plot_seeds.py docs/results/long_low_res/whole_run_avx2/seeds.png \\
        100=docs/results/long_low_res/whole_run_avx2/low_res_12_6/console.log \\
        101=docs/results/long_low_res/whole_run_avx2/low_res_12_6_seed_101/console.log \\
        102=docs/results/long_low_res/whole_run_avx2/low_res_12_6_seed_102/console.log
"""
import importlib.util
import re
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

spec = importlib.util.spec_from_file_location("plot_full_run", Path(__file__).parents[4] / "scripts" / "plot_full_run.py")
plot_full_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_full_run)

ORIGINAL = 78.87  # the original project's published Task A figure (its own teachers, 100 epochs)
WALL = re.compile(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)")  # /usr/bin/time -v's line


def wall_minutes(log: str, console: str) -> float:
    """The whole `dvc exp run`'s wall time, stage start-up and test included, from full_run.sh's console."""
    m = WALL.search(log)
    if not m:
        sys.exit(f"{console}: no /usr/bin/time -v wall-clock line (full_run.sh writes one)")
    return int(m[1] or 0) * 60 + int(m[2]) + float(m[3]) / 60


def main(out: Path, runs: list[str]):
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    tests = []
    if bad := [r for r in runs if "=" not in r]:
        sys.exit(f"{bad[0]}: expected SEED=CONSOLE_LOG")
    for (seed, console), colour in zip((r.split("=", 1) for r in runs), plt.get_cmap("tab10").colors):
        if not Path(console).is_file():
            sys.exit(f"{console}: no such console log")
        log = Path(console).read_text()
        curves, test, minutes = plot_full_run.read_run(log)
        wall = wall_minutes(log, console)
        for name, points in curves.items():
            xs, ys, _ = zip(*points)
            moe = name == "MoE"
            ax.plot(xs, ys, color=colour, lw=2 if moe else 0.8, alpha=1 if moe else 0.45,
                    label=f"seed {seed}: test {test:.2f}%, {int(wall)} min {60 * (wall % 1):02.0f} s wall time, all stages" if moe else None)
        ax.scatter([minutes], [test], marker="*", s=170, color=colour, edgecolors="black", linewidths=0.6, zorder=5)
        tests.append(test)
    ax.axhline(ORIGINAL, ls="--", color="grey", lw=1)
    ax.text(1, ORIGINAL + 0.5, f"original, published: {ORIGINAL}% (its own teachers, 100 epochs)", color="grey", fontsize=8)
    ax.axvline(60, ls=":", color="grey", lw=1)
    ax.text(59.5, 46, "one hour", color="grey", fontsize=8, ha="right", va="bottom", rotation=90)
    spread = f"{statistics.mean(tests):.2f} ± {statistics.stdev(tests):.2f}%" if len(tests) > 1 else f"{tests[0]:.2f}%"
    ax.set_title(f"Task A (real images), `real_data_long.args` on AVX2 kernels (fp32), {len(tests)} seeds: "
                 f"test {spread}\nthin: the teachers, trained here; thick: the MoE from their merge; star: test",
                 fontsize=10)
    ax.set_xlabel("minutes of 2 CPU cores since `dvc exp run` started (epochs only; stage start-up not counted)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_ylim(44, 85)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower center")
    fig.tight_layout()
    fig.savefig(out)
    print(f"written {out}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2:])
