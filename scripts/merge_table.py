"""The merge's measurements on a task: the merged model before training for every merge choice, then
moe against scratch epoch by epoch (validation, test and routing after each, and the seconds of merge
and training until then, the test passes not counted). One JSON line per run.

    moe fetch --task A                     # with source: archive in params.yaml (real Task A)
    python scripts/merge_table.py --task A --teachers tests/fixtures/task_a_teachers merge > merge.jsonl
    python scripts/merge_table.py --task A --teachers tests/fixtures/task_a_teachers --epochs 2 train > train.jsonl
    python scripts/merge_table.py --task B --teachers models/B/teachers baselines   # ensemble and oracle only

The calls are the pipeline's own (``initial_model`` is the merge stage's, ``train_moe`` the train
stage's); only the per-epoch test figures are extra, and the test set chooses nothing.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from moe.base.data import load_task_split, prepare_task_data
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.baselines import teacher_baselines
from moe.core.folding import fold_batchnorm
from moe.core.inference import accuracy, eval_batches, views
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model, train_moe
from moe.core.routing import routing_summary
from moe.core.runtime import pick_device, resolve_precision

MERGE_CHOICES = [("none", "fresh", 0), ("none", "fitted", 0), ("none", "fitted", 500), ("permute", "fresh", 0),
                 ("permute", "fitted", 0), ("permute", "fresh", 500), ("permute", "fitted", 500),
                 ("zip", "fresh", 0), ("zip", "fitted", 0), ("zip", "fitted", 500)]


class StoppedEarly(Exception):
    """Raised after --stop-after epochs: the run ends there, its epochs so far are reported."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["baselines", "merge", "train"])
    parser.add_argument("--task", default="A")
    parser.add_argument("--teachers", type=Path, required=True, help="folder of teacher_<i>.pth")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--methods", default="moe,scratch")
    parser.add_argument("--alignments", default="none,permute,zip", help="merge: the alignments to try")
    parser.add_argument("--fitted-only", action="store_true", help="merge: only with the router and classifier fitted")
    parser.add_argument("--set", action="append", default=[], help="NAME=JSON, a parameter changed for every run")
    parser.add_argument("--epoch-views", choices=["all", "plain"], default="all",
                        help="train: the test figures after each epoch with every view, or the plain image only "
                             "(a sixth of the passes; the selected model always gets every view)")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="train: stop each run after this many epochs of its --epochs schedule (0: run it all)")
    args = parser.parse_args()
    changes = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    p = load_params("params.yaml", {"batch_size": 32, "num_epochs": args.epochs, **changes})
    spec = load_task(Path("tasks") / f"{args.task}.yaml")
    root = Path("data") / args.task
    data = prepare_task_data(spec, root, p["val_fraction"], p["seed"], p["max_train_per_class"])
    test = load_task_split(spec, root, "test")
    files = [args.teachers / f"teacher_{i + 1}.pth" for i in range(spec.num_experts)]
    device = pick_device()

    @torch.no_grad()
    def figures(model, all_views=True):
        """Test figures plain, with the mirror image and with the schedules' six views (``views(x, True, 1)``:
        the image, its mirror image, then each moved), from one pass over the six views, averaged as
        ``predict`` averages them; with ``all_views`` False, the plain image's only."""
        folded, _ = fold_batchnorm(model)
        plain, mirrored, six_views, gates = [], [], [], []
        for x in eval_batches(folded, test.images, data.mean, data.std):
            outputs = [folded(v) for v in (views(x, flip=True, shift=1) if all_views else [x])]
            plain.append(outputs[0][0])
            gates.append(outputs[0][1])
            if all_views:
                mirrored.append((outputs[0][0] + outputs[1][0]) / 2)
                six_views.append(sum(o[0] for o in outputs) / len(outputs))
        result = {"test": round(100 * accuracy(torch.cat(plain), test.labels), 2)}
        if all_views:
            result["test_flip"] = round(100 * accuracy(torch.cat(mirrored), test.labels), 2)
            result["test_flip_shift"] = round(100 * accuracy(torch.cat(six_views), test.labels), 2)
        return {**result, "routing": routing_summary(spec, torch.cat(gates), test.labels)["routing_agreement"]}

    def emit(record):
        print(json.dumps({**record, "load": open("/proc/loadavg").read().split()[:3]}), flush=True)

    if args.what in ("baselines", "merge"):
        emit({"teacher ensemble / oracle": teacher_baselines(spec, files, test.images, test.labels)})
    if args.what == "baselines":
        return
    if args.what == "merge":
        for alignment, router, steps in MERGE_CHOICES:
            if alignment not in args.alignments.split(",") or (args.fitted_only and (router, steps) != ("fitted", 500)):
                continue
            q = {**p, "merge.alignment": alignment, "merge.router_init": router, "merge.classifier_fit_steps": steps,
                 "merge.min_odds_ratio": 0.0}  # the merged model itself, whatever the check would decide
            started = time.perf_counter()
            model, report = initial_model("moe", spec, files, data, settings_from(MergeSettings, q))
            emit({"alignment": alignment, "router": router, "classifier_fit_steps": steps, **figures(model),
                  "seconds": round(time.perf_counter() - started, 1), "steps": report.seconds,
                  "correlation_before": report.correlation_before, "correlation_after": report.correlation_after})
        return
    for method in args.methods.split(","):
        started, aside = time.perf_counter(), 0.0  # aside: seconds of the test figures, not the method's

        def measured(m):
            nonlocal aside
            elapsed = time.perf_counter() - started - aside
            taken = time.perf_counter()
            result = {**figures(m, args.epoch_views == "all"), "seconds": round(elapsed, 1)}  # merge and training until now, figures aside
            aside += time.perf_counter() - taken
            return result

        model, report = initial_model(method, spec, files, data, settings_from(MergeSettings, p))
        model.to(device)
        merged, epochs = measured(model), []
        merged["steps"] = report.seconds  # the merge's steps, its check (random_start_check) among them
        if report.check_seconds:  # the check's random start, step by step (within random_start_check)
            merged["check_steps"] = report.check_seconds
        if report.odds_ratio is not None:  # the check against a random start (merge.min_odds_ratio)
            merged.update({"val_merged": report.merged_val_accuracy, "val_random_start": report.random_val_accuracy,
                           "odds_ratio": round(report.odds_ratio, 3), "started_random": report.started_random})

        def on_epoch(record, m):
            epochs.append({"epoch": record["epoch"], "val": round(record["val_accuracy"], 2), **measured(m)})
            if len(epochs) == args.stop_after:
                raise StoppedEarly

        try:
            result = train_moe(method, p, spec, model, data, files, resolve_precision(p["precision"], device),
                               on_epoch=on_epoch)
        except StoppedEarly:  # the schedule's first epochs only: no selection, no end figures
            emit({"method": method, "epochs": args.epochs, "stopped_after": args.stop_after, "lr": p["lr"],
                  "changes": changes, "start": merged, "per_epoch": epochs})
            continue
        emit({"method": method, "epochs": args.epochs, "lr": p["lr"], "changes": changes, "start": merged, "per_epoch": epochs,
              "best_epoch": result.best_epoch, "selected": figures(model),
              "train_seconds": round(result.clock[-1]["seconds"], 1), "wall_seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
