"""Run by tests/test_distributed.py under `torch.distributed.run` (or alone, as the 1-process reference).

    python tests/ddp_worker.py OUT grad     one training step on a fixed global batch: each rank saves its
                                            shard and its gradients after DDP's all-reduce
    python tests/ddp_worker.py OUT fit [K]  `fit` on a tiny task for 3 epochs with a checkpoint; each rank saves
                                            its final weights and the history; K: rank 0 dies after epoch K
"""

import json
import os
import sys
from pathlib import Path

import torch

from moe.base.data import Split
from moe.core import distributed
from moe.core.models import MoEModel
from moe.core.objectives import MoEObjective
from moe.core.training import TrainConfig, fit

NUM_CLASSES, NUM_EXPERTS = 4, 2


def tiny_split(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    images = torch.randint(0, 60, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    images[torch.arange(n), labels % 3] += (40 * labels[:, None, None]).to(torch.uint8)  # a colour cue per class
    return Split(images, labels)


def model() -> MoEModel:
    torch.manual_seed(0)
    return MoEModel(NUM_CLASSES, NUM_EXPERTS, gate_noise_std=0.0)


def main(out: Path, mode: str, die_after: int | None = None):
    distributed.setup(torch.device("cpu"))
    rank = distributed.rank()
    mean, std = [0.3] * 3, [0.2] * 3
    if mode == "grad":
        net = model()
        net.train()
        objective = MoEObjective()
        objective.begin_epoch(net, 0, 1)
        batch = torch.arange(16)
        train = tiny_split(16, 1)
        from moe.base.data import normalize

        x = distributed.shard(normalize(train.images[batch], mean, std))
        y = distributed.shard(train.labels[batch])
        ddp = distributed.wrap(net)  # held until backward: its hooks all-reduce the gradients
        torch.manual_seed(123)  # the dropout masks: the reference draws the same per shard
        step = objective.step(ddp, x, y)
        step.loss.backward()
        torch.save({"shard": distributed.shard(batch), "grads": {n: p.grad for n, p in net.named_parameters()}},
                   out / f"grad_rank{rank}.pth")
    else:
        net = model()
        calls = []

        def on_epoch(record, _):
            calls.append(record["epoch"])
            if die_after is not None and record["epoch"] == die_after:
                os._exit(3)  # killed after this epoch's checkpoint

        cfg = TrainConfig(num_epochs=3, lr=0.01, batch_size=16, seed=5, patience=10)
        result = fit(net, MoEObjective(), tiny_split(64, 2), tiny_split(16, 3), cfg, mean, std,
                     checkpoint=out / "state.pth", on_epoch=on_epoch)
        torch.save(net.state_dict(), out / f"weights_rank{rank}.pth")
        (out / f"fit_rank{rank}.json").write_text(json.dumps({"history": result.history, "on_epoch": calls,
                                                               "resumed_from": result.resumed_from}))
    distributed.teardown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
