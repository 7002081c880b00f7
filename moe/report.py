"""One Markdown page per task: accuracy, routing and the pictures, readable on GitHub."""

from __future__ import annotations

import pandas as pd


def markdown_table(df: pd.DataFrame, floatfmt: str = "{:.1f}") -> str:
    cols = [str(df.index.name or "")] + [str(c) for c in df.columns]
    fmt = lambda v: floatfmt.format(v) if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [fmt(v) for v in row.tolist()]) + " |")
    return "\n".join(lines)


def task_report(task: str, metrics: dict, routing: dict, teachers: dict, merge: dict, tables: dict, plots_rel: str) -> str:
    per_class = pd.DataFrame({"test accuracy (%)": pd.Series(metrics["per_class"], dtype=float)})
    per_class.index.name = "class"
    contribution = pd.DataFrame(tables["contribution"]).rename_axis("class")
    forced = pd.DataFrame(tables["expert_accuracy"]).rename_axis("class")
    teacher_df = pd.DataFrame({k: {"accuracy on own classes (%)": float(v["accuracy"]), "origin": v["origin"]}
                               for k, v in teachers.items()}).T.rename_axis("teacher")
    usage = pd.DataFrame({"mean gate": pd.Series(routing["utilisation"], dtype=float)}).rename_axis("expert")
    return "\n\n".join([
        f"# Task {task}",
        f"**{metrics['accuracy']:.2f} %** test accuracy on {metrics['images']} images. "
        f"Validation accuracy right after the merge: {merge.get('val_accuracy_at_merge', float('nan')):.1f} %.",
        "## Teachers", markdown_table(teacher_df),
        "## Accuracy per class", markdown_table(per_class),
        f"![per-class accuracy]({plots_rel}/per_class_accuracy.png)",
        "## Routing",
        f"Routing agreement (top expert is a teacher that owns the class): **{routing['routing_agreement']:.1%}**; "
        f"normalised routing entropy {routing['routing_entropy']:.2f}; dead experts: "
        f"{', '.join(routing['dead_experts']) or 'none'}.",
        markdown_table(usage, "{:.3f}"),
        "### Mean gate weight per class", markdown_table(contribution, "{:.2f}"),
        f"![expert contribution]({plots_rel}/expert_contribution.png)",
        "### Accuracy (%) with all weight on one expert", markdown_table(forced, "{:.0f}"),
        f"![expert accuracy]({plots_rel}/expert_accuracy.png)",
        "## Training", f"![learning curves]({plots_rel}/learning_curves.png)",
        "## Sample predictions", f"![sample predictions]({plots_rel}/sample_predictions.png)",
    ]) + "\n"
