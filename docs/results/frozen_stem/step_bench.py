"""Step time of the MoE training step (batch 32, AdamW, fp32, channels-last), the whole model against
the backbone's first k modules frozen, k = 0..4 (4: the first convolution block and both residual blocks, all but the last 1x1 block).
Run from the project root: PYTHONPATH=. python docs/results/frozen_stem/step_bench.py"""
import time, torch, torch.nn.functional as F
from moe.core.models import MoEModel
torch.manual_seed(0)
def bench(frozen, steps=30, bs=32):
    m = MoEModel(15).to(memory_format=torch.channels_last).train()
    for i in range(frozen):
        m.feature_extractor[i].requires_grad_(False)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(bs, 3, 32, 32).to(memory_format=torch.channels_last); y = torch.randint(0, 15, (bs,))
    for s in range(steps + 5):
        if s == 5: t = time.perf_counter()
        logits, _ = m(x); loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return (time.perf_counter() - t) / steps
torch.set_num_threads(2)
for frozen in [0, 1, 2, 3, 4]:
    print(frozen, f"{bench(frozen)*1000:.1f} ms/step", flush=True)
