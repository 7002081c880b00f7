"""The training run's per-epoch figures as tables for DVC's plots (plots/<task>/{accuracy,loss,gating}.csv)."""

from __future__ import annotations


def history_tables(history: list[dict], expert_names: list[str], start: dict | None = None) -> dict[str, list[dict]]:
    """Per-epoch figures in long form (epoch, series, value) for DVC's interactive plots: one table per
    plot, each line named for its legend. Keys: accuracy, loss, gating. ``start``: the merged model's
    record before training (epoch 0), so the validation curve shows where training began, and a start
    kept over every epoch is seen as such."""
    tables = {"accuracy": [], "loss": [], "gating": []}

    def add(table, epoch, series, value):
        tables[table].append({"epoch": epoch, "series": series, "value": value})

    if start is not None:
        add("accuracy", 0, "validation", start["val_accuracy"])

    for h in history:
        e = h["epoch"]
        add("accuracy", e, "train", h["train_accuracy"])
        add("accuracy", e, "validation", h["val_accuracy"])
        add("loss", e, "train cross-entropy", h.get("task_loss", h["train_loss"]))
        add("loss", e, "validation cross-entropy", h["val_loss"])
        if "temperature" in h:
            add("loss", e, "diversity", h["diversity_loss"])
            add("loss", e, "balance", h["balance_loss"])
            add("gating", e, "temperature", h["temperature"])
            for i, name in enumerate(expert_names):
                add("gating", e, f"mean gate {i + 1} {name}", h[f"expert_usage_{i + 1}"])
    return tables


def gate_snapshots(history: list[dict], spec, interval: int) -> dict[str, dict]:
    """Every ``interval``-th epoch's mean gate per class on validation (``val_gate_per_class`` in the
    MoE objective's records): {"epoch N": {expert: {class: weight}}}, for analyze's heatmaps."""
    experts = [f"{i + 1} {t.name}" for i, t in enumerate(spec.teachers)]
    return {f"epoch {h['epoch']}": {e: dict(zip(spec.class_names, row)) for e, row in zip(experts, h["val_gate_per_class"])}
            for h in history if h["epoch"] % interval == 0 and "val_gate_per_class" in h}
