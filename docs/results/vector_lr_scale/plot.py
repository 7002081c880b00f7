"""BatchNorm parameters and biases at ten times the learning rate (``vector_lr_scale: 10``), real Task A.

    python docs/results/vector_lr_scale/plot.py   # writes vector_lr_scale.png beside it

Left: test accuracy after each epoch, ten times against once, each seed a pair of runs on one machine
(native bf16). Right: the session of 2026-12-06 side by side with the original's loop, seconds from
the start, native kernels and the AVX2 kernels forced; dashed, the original's best within 5 and 10
epochs; a ring where a run first reaches one.
"""

import importlib.util
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
_SAME_SESSION = importlib.util.spec_from_file_location("same_session_plot", HERE.parent / "side_by_side/same_session/plot.py")
same_session = importlib.util.module_from_spec(_SAME_SESSION)
_SAME_SESSION.loader.exec_module(same_session)  # its parser of the original's timestamped console
PAIRS = [("native.jsonl", "s100"), ("native.jsonl", "s101"), ("session_2026-12-06.jsonl", "s102")]
SIDE_BY_SIDE = [  # title, the original's console, this project's tag in session_2026-12-06.jsonl
    ("native kernels: the original fp32, this project bf16", "original_10_native.log", "x10_s100"),
    ("AVX2 kernels forced, both fp32", "original_10_avx2.log", "avx2_x10_s100"),
]


def runs(name: str) -> dict[str, dict]:
    path = HERE / name
    return {r["tag"]: r["rec"] for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}


def main():
    fig, axes = plt.subplots(1, 1 + len(SIDE_BY_SIDE), figsize=(17, 5), dpi=120)
    ax = axes[0]
    colours = plt.get_cmap("tab10").colors
    for colour, (name, seed) in zip(colours, PAIRS):
        recs = runs(name)
        for scale, style in (("x1", ":"), ("x10", "-")):
            rec = recs.get(f"{scale}_{seed}")
            if rec:
                ax.plot([e["epoch"] for e in rec["per_epoch"]], [e["test"] for e in rec["per_epoch"]], ls=style,
                        color=colour, marker="o", ms=3, label=f"seed {seed[1:]}, scale {scale[1:]}")
    ax.set(title="vector_lr_scale 10 (solid) against 1 (dotted), native bf16", xlabel="epoch (the first on 16 px images)",
           ylabel="test accuracy, 1,500 images (%)", ylim=(50, None))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    session = runs("session_2026-12-06.jsonl")
    for ax, (title, log, tag) in zip(axes[1:], SIDE_BY_SIDE):
        original = same_session.original_curve(HERE / log) if (HERE / log).exists() else []
        if original:
            ax.plot(*zip(*original), color="0.35", marker="s", ms=3, lw=1.4, label="the original's loop")
        goals = {n: max(t for _, t in original[:n]) for n in (5, 10) if len(original) >= n}
        for n, goal in goals.items():
            ax.axhline(goal, color="0.35", ls="--", lw=0.8)
            ax.text(0.01, goal + 0.5, f"the original's best in {n} epochs, {goal:.2f} %", fontsize=8, color="0.25",
                    transform=ax.get_yaxis_transform())
        rec = session.get(tag)
        if rec:
            curve = [(rec["start"]["seconds"], rec["start"]["test"])] + [(e["seconds"], e["test"]) for e in rec["per_epoch"]]
            ax.plot(*zip(*curve), color=colours[0], marker="o", ms=3, lw=1.2, label="this project, vector_lr_scale 10, seed 100")
            for goal in goals.values():
                if passed := next(((s, t) for s, t in curve if t >= goal), None):
                    ax.scatter(*passed, s=70, facecolors="none", edgecolors=colours[0], lw=1.5, zorder=5)
        ax.set(title=title, xlabel="seconds from the start (merge included)", ylabel="test accuracy (%)", ylim=(30, None),
               xlim=(0, None))
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].title.set_fontsize(10)
    fig.suptitle("Real Task A, the given teachers: ten times the learning rate on BatchNorm parameters and biases", fontsize=11)
    fig.tight_layout()
    fig.savefig(HERE / "vector_lr_scale.png")


if __name__ == "__main__":
    main()
