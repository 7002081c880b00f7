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


DEMO_NOTE = ("These figures come from **demo data**: generated coloured shapes that carry the task's class "
             "names, not real images. They show that the pipeline works, not how well it does on real data.")


def summary_rows(results: dict[str, dict]) -> list[dict]:
    """One row per task for the closing table: the figures a person looks at first, all in percent."""
    rows = []
    for task, r in results.items():
        rows.append({"task": task + (" (demo)" if r["demo"] else ""),
                     "teachers": " / ".join(f"{v:.0f}" for v in r["teachers"].values()),
                     "merged": r["merge"]["val_accuracy_at_merge"],
                     "MoE": r["metrics"]["accuracy"], "images": r["metrics"]["images"],
                     "routing": r["routing"]["routing_agreement"]})
    return rows


def task_report(title: str, r: dict, plots_rel: str) -> str:
    """``r``: one task's results (metrics, per_class, routing, tables, teachers, origins, merge, demo)."""
    metrics, routing, tables, merge = r["metrics"], r["routing"], r["tables"], r["merge"]
    per_class = pd.DataFrame({"test accuracy (%)": pd.Series(r["per_class"], dtype=float)})
    per_class.index.name = "class"
    contribution = pd.DataFrame(tables["contribution"]).rename_axis("class")
    forced = pd.DataFrame(tables["expert_accuracy"]).rename_axis("class")
    teacher_df = pd.DataFrame({k: {"accuracy on own classes (%)": float(v), "origin": r["origins"].get(k, "?")}
                               for k, v in r["teachers"].items()}).T.rename_axis("teacher")
    usage = pd.DataFrame({"mean gate": pd.Series(tables["utilisation"], dtype=float)}).rename_axis("expert")
    return "\n\n".join(([f"# {title}"] + ([f"> {DEMO_NOTE}"] if r["demo"] else [])) + [
        f"**{metrics['accuracy']:.2f} %** test accuracy on {metrics['images']} images. "
        f"Validation accuracy right after the merge, before any training: "
        f"{merge.get('val_accuracy_at_merge', float('nan')):.1f} % (routing agreement "
        f"{merge.get('routing_agreement_at_merge', float('nan')):.1f} %).",
        "## Teachers", markdown_table(teacher_df),
        "## Accuracy per class", markdown_table(per_class),
        f"![per-class accuracy]({plots_rel}/per_class_accuracy.png)",
        "## Routing",
        f"Routing agreement (top expert is a teacher that owns the class): **{routing['routing_agreement']:.1f} %**; "
        f"normalised routing entropy {routing['routing_entropy']:.2f}; dead experts: "
        f"{', '.join(tables['dead_experts']) or 'none'}.",
        markdown_table(usage, "{:.3f}"),
        "### Mean gate weight per class", markdown_table(contribution, "{:.2f}"),
        f"![expert contribution]({plots_rel}/expert_contribution.png)",
        "### Accuracy (%) with all weight on one expert", markdown_table(forced, "{:.0f}"),
        f"![expert accuracy]({plots_rel}/expert_accuracy.png)",
        f"![confusion matrix]({plots_rel}/confusion.png)",
        "## Training", f"![learning curves]({plots_rel}/learning_curves.png)",
        "## Sample predictions", f"![sample predictions]({plots_rel}/sample_predictions.png)",
    ]) + "\n"
