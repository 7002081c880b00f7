"""Training steps per second of the MoE (15 classes, 3 experts, batch 32 of random images, Adam, fp32)
with the backbone trained and frozen (eval mode, no gradient), alternated twice; a scratch benchmark.

    python docs/results/first_epochs_probes/frozen_step_bench.py
"""
import time, torch, torch.nn.functional as F
from moe.core.models import MoEModel
torch.manual_seed(0)
m = MoEModel(15, 3)
opt = torch.optim.Adam(m.parameters(), 1e-3)
x = torch.randn(32, 3, 32, 32); y = torch.randint(0, 15, (32,))
def step(freeze):
    m.train()
    for p in m.feature_extractor.parameters(): p.requires_grad_(not freeze)
    if freeze: m.feature_extractor.eval()
    out = m(x)
    logits = out[0] if isinstance(out, tuple) else out
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(); loss.backward(); opt.step()
for mode in [False, True, False, True]:
    for _ in range(3): step(mode)
    t = time.perf_counter(); n = 20
    for _ in range(n): step(mode)
    print("frozen" if mode else "full", f"{32*n/(time.perf_counter()-t):.1f} img/s")
