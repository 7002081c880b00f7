"""Does the merge pay? The comparison's records (``moe.core.variants``) side by side: accuracy of every
method, trained or not, what each cost, and how soon each reached the reference's accuracy."""

from __future__ import annotations


def comparison_summary(runs: dict[str, dict], baselines: dict[str, float], images: int) -> dict:
    """One record for metrics: accuracy of every method, trained or not, and the cost of the trained."""
    accuracy_by_method = {name: run["test_accuracy"] for name, run in runs.items()}
    routing = {name: run["routing_agreement"] for name, run in runs.items()}
    if "moe" in runs:  # the merge before any training: the moe variant's starting point
        accuracy_by_method["merged, untrained"] = runs["moe"]["test_accuracy_before_training"]
        routing["merged, untrained"] = runs["moe"]["routing_agreement_before_training"]
    accuracy_by_method.update(baselines)
    return {"images": images,
            "test_accuracy": accuracy_by_method,
            "routing_agreement": routing,  # percent of test images whose top expert's teacher holds their class
            "train_seconds": {name: run["train_seconds"] for name, run in runs.items()},
            # variants timed while other work shared the CPU: their seconds are not theirs alone
            "contended": [name for name, run in runs.items() if run.get("contended")],
            "images_seen": {name: run["images_seen"] for name, run in runs.items()},
            "best_epoch": {name: run["best_epoch"] for name, run in runs.items()}}


def time_to_accuracy(runs: dict[str, dict], reference: str = "moe") -> dict[str, float | None]:
    """Seconds each variant took to first reach the reference's best validation accuracy (None: never)."""
    if reference not in runs:
        return {}
    target = runs[reference]["best_val_accuracy"]
    return {name: next((e["seconds"] for e in run["epochs"] if e["val_accuracy"] >= target), None)
            for name, run in runs.items()}


def merge_verdict(runs: dict[str, dict]) -> dict | None:
    """Does the merge pay on these teachers? moe against the same model from random weights, at the
    same epochs, judged on validation (the test set chooses nothing). None without both variants."""
    if not {"moe", "scratch"} <= set(runs):
        return None
    lead = runs["moe"]["best_val_accuracy"] - runs["scratch"]["best_val_accuracy"]
    best = max(runs, key=lambda name: runs[name]["best_val_accuracy"])
    return {"moe_lead_over_scratch": round(lead, 2), "best_on_validation": best}


def verdict_line(verdict: dict) -> str:
    lead, best = verdict["moe_lead_over_scratch"], verdict["best_on_validation"]
    if round(lead, 1) == 0:  # level at the precision the line shows
        return (f"the merge neither pays nor costs here: moe and scratch level on validation, at the same epochs "
                f"(best on validation: {best})")
    if lead > 0:
        return f"the merge pays here: moe {lead:.1f} points above scratch on validation (best on validation: {best})"
    return (f"the merge does not pay here: scratch {-lead:.1f} points above moe on validation, at the same epochs; "
            f"with these teachers train from scratch (best on validation: {best})")


def curve_rows(runs: dict[str, dict]) -> list[dict]:
    """Long-format rows (variant as "series", epoch, seconds, images seen, validation accuracy) for
    DVC's plots (the project's series template colours by "series")."""
    return [{"series": name, **e} for name, run in runs.items() for e in run["epochs"]]
