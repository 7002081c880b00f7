"""Figures a person would rather look at than read. Each function writes one PNG atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..base.formats import atomic_path  # noqa: E402
from ..base.params import METHODS  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def heatmap(matrix, row_labels, col_labels, title, path, fmt="{:.2f}", cmap="viridis", vmax=None,
            xlabel="class", ylabel="expert", separators: list[int] = (), hide_zero: bool = False):
    """Values in cells; ``separators``: positions of lines between groups (teachers' classes), both axes
    when the matrix is square."""
    m = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(col_labels) + 2.5), max(2.6, 0.6 * len(row_labels) + 1.6)))
    im = ax.imshow(m, cmap=cmap, aspect="auto", vmin=0, vmax=vmax if vmax is not None else max(m.max(), 1e-9))
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)  # one integer tick per row, never fractional
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    for (r, c), v in np.ndenumerate(m):
        if hide_zero and v == 0:
            continue
        red, green, blue, _ = im.cmap(im.norm(v))  # dark text on light cells, light on dark
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7,
                color="black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white")
    for b in separators:
        ax.axvline(b - 0.5, color="#d62728", linewidth=1.2)
        if m.shape[0] == m.shape[1]:
            ax.axhline(b - 0.5, color="#d62728", linewidth=1.2)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    _save(fig, path)


def per_class_bars(per_class: dict, title: str, path):
    names = list(per_class)
    values = [per_class[n] if per_class[n] is not None else 0 for n in names]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 3.8))
    bars = ax.bar(range(len(names)), values, color="#4C72B0", label="this model")
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}", ha="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    _save(fig, path)


def learning_curves(history: list[dict], expert_names: list[str], title: str, path):
    """Loss (cross-entropy on both splits, like for like; the MoE's whole training objective dashed),
    accuracy, and for an MoE the gating temperature and each expert's mean gate."""
    epochs = [h["epoch"] for h in history]
    has_gates = "temperature" in history[0] if history else False
    fig, grid = plt.subplots(2 if has_gates else 1, 2, figsize=(9, 6.4 if has_gates else 3.4), squeeze=False)
    axes = grid.flatten()
    train_ce = "task_loss" if "task_loss" in history[0] else "train_loss"
    axes[0].plot(epochs, [h[train_ce] for h in history], label="train, cross-entropy")
    axes[0].plot(epochs, [h["val_loss"] for h in history], label="validation, cross-entropy")
    if train_ce != "train_loss":
        axes[0].plot(epochs, [h["train_loss"] for h in history], "--", color="gray",
                     label="train, whole objective (+ diversity, balance)")
    axes[0].set_title("loss")
    axes[1].plot(epochs, [h["train_accuracy"] for h in history], label="train")
    axes[1].plot(epochs, [h["val_accuracy"] for h in history], label="validation")
    axes[1].set_title("accuracy (%)")
    if has_gates:
        axes[2].plot(epochs, [h["temperature"] for h in history], color="#C44E52")
        axes[2].set_title("gating temperature")
        for i, name in enumerate(expert_names):
            axes[3].plot(epochs, [h[f"expert_usage_{i + 1}"] for h in history], label=f"{i + 1} {name}")
        axes[3].set_title("mean gate per expert")
        axes[3].set_ylim(0, 1)
        axes[3].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def sample_grid(images, rows: list[dict], expert_names: list[str], title: str, path, cols: int = 5):
    """Test images titled true -> predicted, each with a small bar chart of its gate weights."""
    n = len(rows)
    nrows = (n + cols - 1) // cols
    fig = plt.figure(figsize=(cols * 2.3, nrows * 3.6 + 0.6))
    grid = fig.add_gridspec(nrows * 2, cols, height_ratios=[3, 1.2] * nrows, hspace=0.75, wspace=0.3)
    colors = plt.cm.tab10(np.arange(len(expert_names)))
    for k, (img, row) in enumerate(zip(images, rows)):
        r, c = divmod(k, cols)
        ax = fig.add_subplot(grid[2 * r, c])
        ax.imshow(img.permute(1, 2, 0).numpy())
        ok = row["true"] == row["predicted"]
        ax.set_title(f"{row['true']}\n→ {row['predicted']}", fontsize=8, color="#2a7a2a" if ok else "#b22222")
        ax.axis("off")
        gx = fig.add_subplot(grid[2 * r + 1, c])
        weights = [row.get(f"gate_{e}", 0.0) for e in expert_names]
        gx.barh(range(len(weights)), weights, color=colors)
        gx.set_xlim(0, 1)
        gx.set_yticks(range(len(weights)), [str(i + 1) for i in range(len(weights))], fontsize=6)
        gx.tick_params(axis="x", labelsize=6)
        gx.invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[i]) for i in range(len(expert_names))]
    fig.legend(handles, [f"{i + 1}: {e}" for i, e in enumerate(expert_names)], loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=len(expert_names), fontsize=8, title="gate weight per expert", title_fontsize=8)
    fig.suptitle(title)
    _save(fig, path)


def _bar_colour(name: str, trained: set[str]) -> str:
    if "oracle" in name:
        return "#c7ccd1"  # an upper bound, not a model
    return "#4C72B0" if name in trained else "#9aa5b1"


def method_bars(accuracies: dict[str, float], title: str, path, trained: set[str] = frozenset(), ax=None):
    """Horizontal bars, one per method, best at the top, the value at each bar's end; trained methods
    blue, untrained grey, the oracle light (it is a bound, not a model)."""
    names = sorted(accuracies, key=accuracies.get)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.4))
    trained = trained or {n for n in names if "oracle" not in n}
    bars = ax.barh(range(len(names)), [accuracies[n] for n in names], color=[_bar_colour(n, trained) for n in names])
    for b, n in zip(bars, names):
        ax.text(b.get_width() + 1, b.get_y() + b.get_height() / 2, f"{accuracies[n]:.1f}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlim(0, 105)
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(title)
    if fig is not None:
        _save(fig, path)


def comparison_plot(accuracies: dict[str, float], runs: dict[str, dict], title: str, path):
    """Left: test accuracy per method (trained in blue). Right: validation accuracy against training
    images seen per trained variant, so it shows who learns sooner, not only who ends higher. Images,
    not seconds: the same for every variant whatever else ran on the machine (seconds are in the table)."""
    fig, (bars, curves) = plt.subplots(1, 2, figsize=(13, max(4.2, 0.42 * len(accuracies) + 1.6)),
                                       gridspec_kw={"width_ratios": [1, 1.15]})
    method_bars(accuracies, "test accuracy, after training", None, trained=set(runs), ax=bars)
    palette = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")  # no colour twice
    for i, (name, run) in enumerate(runs.items()):
        seen = [e["images_seen"] / 1000 for e in run["epochs"]]
        acc = [e["val_accuracy"] for e in run["epochs"]]
        style = "-" if name in METHODS else "--"  # methods solid, ablations dashed
        curves.plot(seen, acc, style, marker="o", markersize=3, color=palette(i % palette.N), label=name)
    curves.set_xlabel("training images seen (thousands)")
    curves.set_ylabel("validation accuracy (%)")
    curves.set_title("learning speed: validation accuracy per image seen")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    _save(fig, path)
