"""Where and how numbers are computed: device, precision, seeds."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from ..base.errors import MoEError
from ..base.params import PRECISIONS



def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def bf16_is_fast(device: torch.device) -> bool:
    """bf16 pays only with hardware support: AMX or AVX512-BF16 on a CPU, bf16 tensor cores on a GPU.

    Elsewhere (an AVX2-only CPU, say) bf16 is emulated and far slower than fp32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    hardware = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    # the kernels must be allowed to use it: ATEN_CPU_CAPABILITY=avx2 or ONEDNN_MAX_CPU_ISA=AVX2 make
    # such a CPU run as an AVX2-only one, bf16 emulated
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    onednn_may = isa_cap in ("", "ALL", "DEFAULT") or any(s in isa_cap for s in ("BF16", "FP16", "AMX", "AVX10"))
    return bool(hardware and torch.backends.cpu.get_cpu_capability() == "AVX512" and onednn_may)


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise MoEError(f"precision: '{precision}' is not one of {PRECISIONS}")
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    return precision


def memory_format_for(image_size: int, device: torch.device, training: bool = True) -> torch.memory_format:
    """The tensor layout that is faster for this image size, device and use, by measurement (`moe bench`).

    Training on an AVX2-only CPU: channels-last gains 36 % at 64x64 but costs 12 % at 32x32 (its
    backward kernels pay once a feature map holds enough pixels per channel). With AVX-512 kernels
    it is faster at 32x32 too: a 2-core EPYC trains 17 % faster in bf16 (191 against 164 img/s at
    batch 32) and in fp32 (116 against 99), largely because NCHW max-pooling there takes 12 ms a
    batch against 0.8 ms. Inference: channels-last is faster at both sizes (32x32: 170.6 against
    165.9 img/s on the AVX2-only machine; BatchNorm folded, AVX2 kernels forced, 232 against 168).
    On a GPU it is the layout tensor cores want.
    """
    avx512 = device.type == "cpu" and torch.backends.cpu.get_cpu_capability() == "AVX512"
    if device.type == "cuda" or image_size >= 64 or not training or avx512:
        return torch.channels_last
    return torch.contiguous_format


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def machine_load() -> float | None:
    """The 1-minute load average: above the core count, something else shared the CPU (None where the
    system keeps none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def contended(loads: list[float | None], cores: int | None = None) -> bool:
    """Whether timings taken at these loads were slowed by other work: more runnable threads than cores."""
    cores = cores or os.cpu_count() or 1
    return any(load is not None and load > cores + 0.5 for load in loads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached": float(cached)}  # plain types: loads with weights_only
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
