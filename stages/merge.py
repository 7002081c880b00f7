"""merge: the MoE training starts from: the teachers' backbones aligned and merged, experts copied, router fitted."""

from pathlib import Path

import typer

from moe.base.data import prepare_task_data
from moe.base.formats import save_json
from moe.base.params import param_names, settings_from
from moe.core.checkpoints import save_model
from moe.core.inference import accuracy, predict
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model
from moe.core.routing import routing_summary

from .common import PARAMS_OPTION, TASK_OPTION, Paths, reads, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("merge")
@stage
@reads(*param_names(MergeSettings), "max_train_per_class", "val_fraction", "method")
def merge_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Align the teachers' channels (zip or permute), merge their backbones, copy their experts, fit the router."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    data = prepare_task_data(spec, paths.data, p["val_fraction"], p["seed"], p["max_train_per_class"])
    # method scratch: the same architecture from random weights, to isolate what the teachers are worth
    model, report = initial_model(p["method"], spec, paths.teacher_files(spec), data,
                                  settings_from(MergeSettings, p), say)
    logits, gates = predict(model, data.val.images, data.mean, data.std)
    acc = 100.0 * accuracy(logits, data.val.labels)
    routing = routing_summary(spec, gates, data.val.labels)["routing_agreement"]
    save_model(paths.merged, model.cpu(), data.mean, data.std, spec.class_ids, spec.class_names)
    metrics = {"val_accuracy_at_merge": round(acc, 2), "routing_agreement_at_merge": routing}
    if report.correlation_after:
        metrics["mean_correlation_before"] = round(sum(report.correlation_before.values()) / len(report.correlation_before), 4)
        metrics["mean_correlation_after"] = round(sum(report.correlation_after.values()) / len(report.correlation_after), 4)
    if report.odds_ratio is not None:  # the check against a random start (merge.min_odds_ratio)
        metrics.update({"val_accuracy_merged": report.merged_val_accuracy,
                        "val_accuracy_random_start": report.random_val_accuracy,
                        "odds_ratio_over_random_start": round(report.odds_ratio, 3),
                        "started_random": report.started_random})
    save_json(metrics, paths.merge_metrics)
    save_json({"correlation_before": report.correlation_before, "correlation_after": report.correlation_after,
               "alignment_images": report.alignment_images, "bn_images": report.bn_images, "fit_images": report.fit_images,
               "router_loss": report.router_loss, "classifier_loss": report.classifier_loss},
              paths.merge_details)  # no timings in outputs: the same inputs give the same bytes
    if report.correlation_after:
        say("channel correlation between teachers, before -> after alignment: " + ", ".join(
            f"{point} {report.correlation_before[point]:.2f} -> {after:.2f}"
            for point, after in report.correlation_after.items()))
    if report.odds_ratio is not None:
        say(f"the merged model's odds of a right validation answer are {report.odds_ratio:.2f} times scratch's random start's "
            f"({report.merged_val_accuracy:.1f}% right against {report.random_val_accuracy:.1f}%, both calibrated)"
            + (f", less than merge.min_odds_ratio ({p['merge.min_odds_ratio']:g}): these teachers add little "
               "a random start lacks, so training starts from random weights, as scratch does"
               if report.started_random else ""))
    say(f"merged {spec.num_experts} teachers into {paths.merged} in {sum(report.seconds.values()):.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in report.seconds.items())}); validation accuracy before training "
        f"{acc:.1f}%, routing agreement {routing:.1f}%")
