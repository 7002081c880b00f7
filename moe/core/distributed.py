"""One training run over several processes: torchrun starts them, DDP keeps their weights equal.

Under ``torchrun`` every process (rank) holds the whole model and the whole dataset in memory. Each
epoch every rank draws the same global batch order and the same augmentations (same seeded
generator), then trains on its own shard of each global batch: rank r takes positions r, r + W,
r + 2W, ... (W = world size). The shards of an epoch are disjoint and cover it, and with one process
the shard is the whole batch, so a 1-process run is exactly the plain loop. DDP averages the
gradients, so every rank takes the same optimizer step.

BatchNorm keeps per-rank batch statistics (no SyncBatchNorm: it does not run on CPU, and with
per-rank shards of >= 16 images the statistics are already stable); the running statistics are
made equal by copying rank 0's before every validation, so every rank validates, selects and
stops identically. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

from ..base.errors import MoEError


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_rank_zero() -> bool:
    """True in a single process and on rank 0 of a torchrun launch (known from the environment
    before the process group is up)."""
    return int(os.environ.get("RANK", "0")) == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def check_batch_size(batch_size: int, processes: int, option: str = "batch_size") -> None:
    """Every process needs two images of each batch (BatchNorm); else one line naming the option."""
    if batch_size < 2 * processes:
        raise MoEError(f"{option} {batch_size} gives some of the {processes} processes fewer than two images per step "
                       "(BatchNorm needs two): raise it or lower processes")


def relaunch_under_torchrun(processes: int, batch_size: int, batch_option: str, command: list[str],
                            say=lambda s: None) -> None:
    """With ``processes`` > 1 and not started by torchrun: replace this process by PyTorch's launcher
    running ``python <command>`` in that many processes on this machine (`dvc repro` needs no change).
    Several machines: start `torchrun --nnodes ...` yourself; the command then runs as it is."""
    if processes <= 1 or launched_by_torchrun():
        return
    check_batch_size(batch_size, processes, batch_option)  # said once here, not once per process
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *command]
    say(f"running under torchrun in {processes} processes: {' '.join(argv[1:])}")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def setup(device: torch.device | None = None) -> torch.device:
    """Join the process group when torchrun started this process; returns this rank's device
    (``cuda:LOCAL_RANK`` on a GPU machine, else ``device`` or the CPU). NCCL on CUDA, gloo on CPU."""
    if device is None:
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global batch (all of it in a single process)."""
    return batch[rank()::world_size()]


def wrap(model: nn.Module) -> nn.Module:
    """The module to train: DDP around ``model`` in a process group, else ``model`` itself."""
    if world_size() == 1:
        return model
    device_ids = [model_device(model).index] if model_device(model).type == "cuda" else None
    # BatchNorm statistics stay per rank while training (see above); rank 0's are copied before validation
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, forward_sync_buffers=False)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def sum_over_ranks(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over every rank (themselves in a single process)."""
    if world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def copy_buffers_from_rank_zero(model: nn.Module) -> None:
    """BatchNorm running statistics of rank 0 on every rank (parameters are equal already)."""
    if world_size() == 1:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)
