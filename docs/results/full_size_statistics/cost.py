"""Seconds of one re-estimation after a small epoch (``full_size_statistics``) on Task A's shapes: the
MoE, 8 batches of 32 full-size 32x32 images, fp32, against one full-size training epoch's 211 steps.

    python docs/results/full_size_statistics/cost.py     (prefix ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 for AVX2 kernels)
"""
import json
import time

import torch

from moe.core.models import MoEModel
from moe.core.runtime import memory_format_for
from moe.core.training import TrainConfig, full_size_statistics

torch.manual_seed(0)
model = MoEModel(15, 3)
images = torch.randint(0, 256, (6750, 3, 32, 32), dtype=torch.uint8)
cfg = TrainConfig(batch_size=32, bn_recalibration_batches=8)
layout = memory_format_for(32, torch.device("cpu"))
model.to(memory_format=layout)
full_size_statistics(model, images, [0.5] * 3, [0.25] * 3, cfg, 0, layout)  # warm-up
seconds = []
for epoch in range(5):
    started = time.perf_counter()
    full_size_statistics(model, images, [0.5] * 3, [0.25] * 3, cfg, epoch, layout)
    seconds.append(round(time.perf_counter() - started, 3))
print(json.dumps({"seconds": seconds, "images": 8 * 32, "threads": torch.get_num_threads(),
                  "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                  "load": open("/proc/loadavg").read().split()[:3]}))
