"""Measure what this machine does: training and inference images/s, achieved GFLOP/s, and the same
for a plain fp32 eager reference step, against fp32 and bf16 peaks measured in the same run (each the
faster of a large matmul and a large convolution)."""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ..base.data import normalize
from ..core.batches import augment
from ..core.folding import fold_batchnorm
from ..core.inference import EVAL_BATCH
from ..core.losses import moe_loss
from ..core.models import MoEModel
from ..core.runtime import autocast, bf16_is_fast, memory_format_for, pick_device


def _timed(fn, min_seconds: float, warmup: int = 1) -> float:
    """Seconds per call, after warm-up, over at least ``min_seconds``."""
    for _ in range(warmup):
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 2:
            return elapsed / calls


def matmul_tflops(dtype: torch.dtype, size: int, device, min_seconds: float) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    return 2 * size ** 3 / _timed(lambda: a @ b, min_seconds) / 1e12


def conv_tflops(dtype: torch.dtype, device, min_seconds: float, small: bool = False) -> float:
    """A large 3x3 convolution, 256 -> 256 channels on 16x16 maps (the backbone's widest), channels-last.
    On a CPU, oneDNN's convolution kernels can outrun the BLAS matmul: on a 2-core AVX-512 AMD EPYC
    571 against 229 GFLOP/s in fp32, so a matmul alone understates what the machine reaches."""
    batch, channels, side = (2, 32, 8) if small else (64, 256, 16)
    layout = torch.channels_last
    x = torch.randn(batch, channels, side, side, device=device, dtype=dtype).contiguous(memory_format=layout)
    w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype).contiguous(memory_format=layout)
    flop = 2 * batch * channels * channels * 9 * side * side
    return flop / _timed(lambda: F.conv2d(x, w, padding=1), min_seconds) / 1e12


def forward_gflop(image_size: int, num_classes: int = 15) -> float:
    model = MoEModel(num_classes, 3).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, image_size, image_size))
    return counter.get_total_flops() / 1e9


def with_plain_dropout(model: nn.Module) -> nn.Module:
    """``model`` with every dropout module a plain ``nn.Dropout`` (the reference step's)."""
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.Dropout) and type(child) is not nn.Dropout:
                setattr(module, name, nn.Dropout(child.p))
    return model


def step_functions(image_size: int, batch_size: int, device, precision: str, fast: bool,
                   infer_batch: int = EVAL_BATCH):
    """(train_step, infer) for one path: a full training step (augment, forward, three losses,
    backward, AdamW) on ``batch_size`` images, and an inference pass on ``infer_batch`` images.
    ``fast``: as the project trains and predicts (layouts of ``memory_format_for``, bit-mask dropout,
    BatchNorm folded on each call as ``moe.inference.predict`` does); else plain PyTorch modules in NCHW."""
    torch.manual_seed(0)
    fmt, infer_fmt = torch.contiguous_format, torch.contiguous_format
    if fast:
        fmt, infer_fmt = memory_format_for(image_size, device), memory_format_for(image_size, device, training=False)
    model = MoEModel(15, 3).to(device).to(memory_format=fmt)
    if not fast:
        with_plain_dropout(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randint(0, 256, (batch_size, 3, image_size, image_size), dtype=torch.uint8)
    labels = torch.randint(0, 15, (batch_size,), device=device)
    g = torch.Generator().manual_seed(0)
    mean, std = [0.5] * 3, [0.25] * 3
    eval_images = torch.randint(0, 256, (infer_batch, 3, image_size, image_size), dtype=torch.uint8)
    x_eval = normalize(eval_images, mean, std).to(device).contiguous(memory_format=infer_fmt)

    def train_step():
        model.train()
        x = normalize(augment(images, g), mean, std).to(device).contiguous(memory_format=fmt)
        with autocast(device, precision):
            logits, gates = model(x)
        loss = moe_loss(logits, labels, gates, 0.1, 0.5).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    @torch.no_grad()
    def infer():
        model.eval()
        runner = fold_batchnorm(model)[0].to(memory_format=infer_fmt) if fast else model  # per call, as predict
        with autocast(device, precision):
            runner(x_eval)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return train_step, infer


def paired_rates(image_size: int, batch_size: int, paths: dict, device, min_seconds: float, rounds: int = 3,
                 infer_batch: int = EVAL_BATCH) -> dict:
    """Images/s of each path, timed in alternation for ``rounds`` rounds and the best round kept, so
    that a slow moment of a shared machine or the order of measurement does not decide a ratio."""
    steps = {name: step_functions(image_size, batch_size, device, *how, infer_batch=infer_batch)
             for name, how in paths.items()}
    best = {name: {"train_img_s": 0.0, "infer_img_s": 0.0} for name in paths}
    for _ in range(rounds):
        for name, (train_step, infer) in steps.items():
            best[name]["train_img_s"] = max(best[name]["train_img_s"], batch_size / _timed(train_step, min_seconds / rounds))
            best[name]["infer_img_s"] = max(best[name]["infer_img_s"], infer_batch / _timed(infer, min_seconds / rounds))
    return best


# The batch of the original recipe and of every real-data schedule: on a CPU the per-image speed
# depends on it (feature maps in or out of cache; 64x64 on a 2-core EPYC: 17.5 img/s at 32, 15.2 at
# 64, 11.7 at 128), so the yardstick is the batch users train with.
TRAIN_BATCH = 32


def run_bench(precision: str, sizes=(32, 64), batch_size: int = TRAIN_BATCH, infer_batch: int = EVAL_BATCH,
              min_seconds: float = 3.0, say=lambda s: None) -> dict:
    """``say`` hears a line after each measurement: the whole run takes minutes."""
    device = pick_device()
    native_bf16 = bf16_is_fast(device)
    # each precision's peak: the faster of a large matmul and a large convolution (emulated bf16 is so
    # slow that small ones tell enough)
    ops = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        small = name == "bf16" and not native_bf16
        ops[f"matmul_{name}_tflops"] = matmul_tflops(dtype, 256 if small else 2048, device, min_seconds)
        ops[f"conv_{name}_tflops"] = conv_tflops(dtype, device, min_seconds, small)
    peaks = {f"{name}_tflops": max(ops[f"matmul_{name}_tflops"], ops[f"conv_{name}_tflops"]) for name in ("fp32", "bf16")}
    say("peaks, the faster of a matmul and a convolution: " + ", ".join(
        f"{name} {peaks[f'{name}_tflops'] * 1e3:.1f} GFLOP/s (matmul {ops[f'matmul_{name}_tflops'] * 1e3:.1f}, "
        f"convolution {ops[f'conv_{name}_tflops'] * 1e3:.1f})" for name in ("fp32", "bf16")))
    rows = []
    for size in sizes:
        gflop = forward_gflop(size)
        rates = paired_rates(size, batch_size, {"fast": (precision, True), "reference": ("fp32", False)},
                             device, 3 * min_seconds, infer_batch=infer_batch)
        fast, ref = rates["fast"], rates["reference"]
        say(f"{size}x{size} fast path: train {fast['train_img_s']:.0f} img/s, inference {fast['infer_img_s']:.0f} img/s")
        say(f"{size}x{size} reference: train {ref['train_img_s']:.0f} img/s, inference {ref['infer_img_s']:.0f} img/s")
        for name, rates in (("fast", fast), ("reference", ref)):
            achieved = rates["train_img_s"] * 3 * gflop  # backward costs about twice the forward
            rows.append({"image_size": size, "path": name, "precision": precision if name == "fast" else "fp32",
                         "batch_size": batch_size, "infer_batch": infer_batch, "train_img_s": round(rates["train_img_s"], 1),
                         "infer_img_s": round(rates["infer_img_s"], 1), "train_gflop_s": round(achieved, 1),
                         "of_fp32_peak": round(achieved / (peaks["fp32_tflops"] * 1e3), 3),
                         "of_bf16_peak": round(achieved / (peaks["bf16_tflops"] * 1e3), 3)})
        rows[-2]["train_speedup"] = round(fast["train_img_s"] / ref["train_img_s"], 2)
        rows[-2]["infer_speedup"] = round(fast["infer_img_s"] / ref["infer_img_s"], 2)
        rows[-2]["forward_gflop"] = rows[-1]["forward_gflop"] = round(gflop, 3)
    return {"device": str(device), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "native_bf16": native_bf16,
            "peaks": {k: round(v, 4) for k, v in peaks.items()}, "peak_ops": {k: round(v, 4) for k, v in ops.items()},
            "rows": rows}
