"""Probe (not merged into moe): a few cheap epochs on cached backbone features before the schedule.

The backbone's first four modules (conv 3->64, both residual blocks, both pools) hold 5/6 of a step's
multiply-adds at 32x32. Frozen, their output (256 x 8 x 8 per image) is the same every epoch for a
given view, so it is computed once (for each image, with ``--views 2`` its mirror image too), and the rest of the model
(the 1x1 block, experts, router, classifier) trains on it for ``--cached-epochs`` epochs, with a
random 1-pixel move of the feature map standing in for the 4-pixel crops. Then the full schedule
runs from there, as merge_table.py runs it, stopped after ``--stop-after`` epochs. One JSON line.

    python docs/results/cached_features/probe.py --cached-epochs 3 --views 1 --schedule-warmup 0 --stop-after 2
    python docs/results/cached_features/probe.py --cached-epochs 0 --low-res-epochs 1 --stop-after 4   # the baseline

Run from a clone with real Task A fetched (data/A), the given teachers, the AVX2 kernels forced.
(runs.jsonl's first line ran an earlier cache: the model in eval mode, BatchNorm not folded, batches
of 250; its accuracies are this script's up to rounding, its cache seconds are not.)
"""

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from moe.base.data import load_task_split, prepare_task_data
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.folding import fold_batchnorm
from moe.core.inference import accuracy, eval_batches
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model, train_moe
from moe.core.runtime import resolve_precision
from moe.core.training import parameter_groups

FROZEN = 5  # feature_extractor[:5]: conv block, residual, pool, residual, pool


class Stop(Exception):
    pass


def schedule_params(seed: int, low_res_epochs: int, warmup_epochs: float) -> dict:
    """The side-by-side screen's settings (schedules/real_data.args' MoE part), fp32, no check."""
    return load_params("params.yaml", {
        "batch_size": 32, "num_epochs": 16, "lr": 0.001, "warmup_epochs": warmup_epochs, "label_smoothing": 0.1,
        "ema_decay": 0.998, "weight_decay_scope": "matrices", "vector_lr_scale": 10.0,
        "low_res_epochs": low_res_epochs, "precision": "fp32", "seed": seed, "merge.min_odds_ratio": 0.0})


@torch.no_grad()
def cache_features(model, images, mean, std, views: int) -> torch.Tensor:
    """views x N x 256 x 8 x 8: the frozen modules' output for each image (and its mirror image), from the
    inference path (BatchNorm folded, its layout)."""
    folded, _ = fold_batchnorm(model)
    frozen = folded.feature_extractor[:FROZEN]
    out = []
    for flip in (False, True)[:views]:
        out.append(torch.cat([frozen(x.flip(3) if flip else x).contiguous()
                              for x in eval_batches(folded, images, mean, std)]))
    return torch.stack(out)


def cached_step_forward(model, feats):
    features = model.feature_extractor[FROZEN](feats)
    pooled = features.mean(dim=(2, 3))
    gates, gate_features = model.gating_network(pooled)
    expert_out = torch.stack([expert(features) for expert in model.experts], dim=1)
    return model.combine(expert_out, gates, gate_features)


def move(feats: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each map moved by -1, 0 or +1 in each direction, zeros shifted in (the crops' zero padding)."""
    n, _, h, w = feats.shape
    padded = F.pad(feats, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=g)
    dx = torch.randint(0, 3, (n,), generator=g)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cached-epochs", type=int, default=3)
    ap.add_argument("--stop-after", type=int, default=2)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--views", type=int, default=2, choices=[1, 2], help="cached: the image, and its mirror image")
    ap.add_argument("--low-res-epochs", type=int, default=0, help="of the schedule after the cached epochs")
    ap.add_argument("--schedule-warmup", type=float, default=1.0, help="warmup_epochs of the schedule afterwards")
    ap.add_argument("--teachers", type=Path, default=Path("tests/fixtures/task_a_teachers"))
    args = ap.parse_args()
    p = schedule_params(args.seed, args.low_res_epochs, args.schedule_warmup)
    spec = load_task(Path("tasks/A.yaml"))
    data = prepare_task_data(spec, Path("data/A"), p["val_fraction"], p["seed"], p["max_train_per_class"])
    test = load_task_split(spec, Path("data/A"), "test")
    files = [args.teachers / f"teacher_{i + 1}.pth" for i in range(spec.num_experts)]
    started, aside = time.perf_counter(), 0.0

    @torch.no_grad()
    def figures(model):
        nonlocal aside
        taken = time.perf_counter()
        folded, _ = fold_batchnorm(model)
        logits = torch.cat([folded(x)[0] for x in eval_batches(folded, test.images, data.mean, data.std)])
        result = {"test": round(100 * accuracy(logits, test.labels), 2),
                  "seconds": round(taken - started - aside, 1)}
        aside += time.perf_counter() - taken
        return result

    model, _ = initial_model("moe", spec, files, data, settings_from(MergeSettings, p))
    record = {"seed": args.seed, "cached_epochs": args.cached_epochs, "lr": args.lr, "views": args.views,
              "low_res_epochs": args.low_res_epochs, "schedule_warmup": args.schedule_warmup, "merged": figures(model), "cached": [], "schedule": []}
    if args.cached_epochs:
        feats = cache_features(model, data.train.images, data.mean, data.std, args.views)
        record["cache_seconds"] = round(time.perf_counter() - started - aside - record["merged"]["seconds"], 1)
        for prm in model.feature_extractor[:FROZEN].parameters():
            prm.requires_grad_(False)
        opt = torch.optim.AdamW(parameter_groups(model, args.lr, p["weight_decay"], p["weight_decay_scope"],
                                                 p["vector_lr_scale"]))
        g = torch.Generator().manual_seed(args.seed)
        batch = p["batch_size"]
        n, steps_per_epoch = len(data.train), len(data.train) // batch
        total, step = args.cached_epochs * steps_per_epoch, 0
        base_lrs = [grp["lr"] for grp in opt.param_groups]
        for epoch in range(args.cached_epochs):
            model.train()
            model.feature_extractor[:FROZEN].eval()
            order = torch.randperm(n, generator=g)
            for b in range(steps_per_epoch):
                idx = order[b * batch:(b + 1) * batch]
                view = (torch.rand(len(idx), generator=g) < 0.5).long() * (args.views - 1)
                x = move(feats[view, idx], g)
                # linear warmup over the first epoch's steps, then a linear decay to a tenth
                scale = min(1.0, (step + 1) / steps_per_epoch) * (1 - 0.9 * step / total)
                for grp, lr0 in zip(opt.param_groups, base_lrs):
                    grp["lr"] = lr0 * scale
                loss = F.cross_entropy(cached_step_forward(model, x), data.train.labels[idx],
                                       label_smoothing=p["label_smoothing"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            record["cached"].append({"epoch": epoch + 1, **figures(model)})
        del feats
        for prm in model.parameters():
            prm.requires_grad_(True)

    def on_epoch(rec, m):
        record["schedule"].append({"epoch": rec["epoch"], "val": round(rec["val_accuracy"], 2), **figures(m)})
        if len(record["schedule"]) == args.stop_after:
            raise Stop

    try:
        train_moe("moe", p, spec, model, data, files, resolve_precision("fp32", torch.device("cpu")), on_epoch=on_epoch)
    except Stop:
        pass
    record["load"] = open("/proc/loadavg").read().split()[:3]
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
