"""Where a training step's time goes: torch.profiler over 20 of `moe.results.bench`'s fast steps
(32x32, batch 32, the precision `auto` picks), each op's share of the self time. Run from the checkout:
    python docs/results/bench_peaks/profile_step.py
(docs/speed.md, "Why the peak is now the faster of a matmul and a convolution": 116 ms a bf16 step.)"""

from torch.profiler import ProfilerActivity, profile

from moe.core.runtime import pick_device, resolve_precision
from moe.results.bench import step_functions

STEPS = 20
device = pick_device()
train_step, _ = step_functions(32, 32, device, resolve_precision("auto", device), fast=True)
for _ in range(5):  # warm-up
    train_step()
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(STEPS):
        train_step()
ops = prof.key_averages()
total = sum(e.self_cpu_time_total for e in ops)
for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:22]:
    print(f"{e.key[:45]:45s} {100 * e.self_cpu_time_total / total:5.1f} %  {e.self_cpu_time_total / STEPS / 1000:7.2f} ms/step")
print(f"total {total / STEPS / 1000:.1f} ms/step")
