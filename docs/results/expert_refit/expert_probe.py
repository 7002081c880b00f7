"""Probe: refit each expert to reproduce its teacher's features on the merged backbone, then refit the
classifier; test accuracy before and after. Scratch only."""
import json, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F
from moe.base.data import load_task_split, prepare_task_data, normalize
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model, teacher_normalisations
from moe.core.checkpoints import load_teacher
from moe.core.inference import predict, accuracy
from moe.core import router

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 300
torch.manual_seed(0)
p = load_params("params.yaml", {"batch_size": 32, "num_epochs": 16, "merge.min_odds_ratio": 0.0, "seed": 100})
spec = load_task(Path("tasks/A.yaml")); root = Path("data/A")
data = prepare_task_data(spec, root, p["val_fraction"], p["seed"], p["max_train_per_class"])
test = load_task_split(spec, root, "test")
files = [Path("tests/fixtures/task_a_teachers") / f"teacher_{i + 1}.pth" for i in range(3)]
t0 = time.perf_counter()
model, report = initial_model("moe", spec, files, data, settings_from(MergeSettings, p))
def acc(m, split):
    logits, _ = predict(m, split.images, data.mean, data.std)
    return round(100 * accuracy(logits, split.labels), 2)
out = {"merged_test": acc(model, test), "merged_val": acc(model, data.val), "merge_s": round(time.perf_counter() - t0, 1)}
print(out, flush=True)
teachers = [load_teacher(f, len(t.class_ids)).eval() for f, t in zip(files, spec.teachers)]
norms = teacher_normalisations(files, data)
g = torch.Generator().manual_seed(7)
idx = torch.randperm(len(data.train), generator=g)[:N]
imgs = data.train.images[idx]
t1 = time.perf_counter()
model.eval()
with torch.no_grad():
    feats = torch.cat([model.feature_extractor(normalize(imgs[s:s + 250], data.mean, data.std)) for s in range(0, N, 250)])
    targets = []
    for t, (m, s_) in zip(teachers, norms):
        parts = []
        for s in range(0, N, 250):
            x = normalize(imgs[s:s + 250], m, s_)
            x = F.max_pool2d(t.residual1(t.conv1(x)), 2)
            x = F.max_pool2d(t.residual2(x), 2)
            parts.append(t.conv3[0](t.conv2(x)).mean(dim=(2, 3)))
        targets.append(torch.cat(parts))
out["cache_s"] = round(time.perf_counter() - t1, 1)
t2 = time.perf_counter()
fits = []
for i, (expert, target) in enumerate(zip(model.experts, targets)):
    expert.eval()
    with torch.no_grad():
        before = F.mse_loss(expert(feats), target).item()
    opt = torch.optim.Adam(expert.parameters(), lr=1e-3)
    for step in range(STEPS):
        b = torch.randint(0, N, (64,), generator=g)
        loss = F.mse_loss(expert(feats[b]), target[b])
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        after = F.mse_loss(expert(feats), target).item()
    fits.append({"expert": i + 1, "mse_before": round(before, 4), "mse_after": round(after, 4), "target_var": round(target.var().item(), 4)})
out["fits"] = fits
out["refit_s"] = round(time.perf_counter() - t2, 1)
out["after_refit_old_classifier_test"] = acc(model, test)
t3 = time.perf_counter()
cache = router.cache_features(model, data.train, data.mean, data.std)
router.fit_classifier(model, cache, 500, 100)
out["classifier_s"] = round(time.perf_counter() - t3, 1)
out["after_refit_test"], out["after_refit_val"] = acc(model, test), acc(model, data.val)
print(json.dumps(out), flush=True)
