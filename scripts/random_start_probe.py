"""Are the teachers' features worth more than random ones? The merged start (the merge stage's own
``initial_model``) against scratch's random start given the same BatchNorm re-estimation and the same
router and classifier fits, on validation and test. One JSON line.

    python scripts/random_start_probe.py own models/own/teachers 'merge.alignment="zip"' seed=101

A trial for issue 23's weak teachers (docs/results.md, "A task of your own"): it was meant as a
guard that starts from random weights when they probe better, and does not separate the cases.
"""

import json
import sys
import time
from pathlib import Path

from moe.base.data import load_task_split, prepare_task_data
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.inference import accuracy, predict
from moe.core.merge import MergeReport, MergeSettings, calibrate
from moe.core.methods import initial_model, random_moe
from moe.core.runtime import pick_device


def main():
    task, teachers = sys.argv[1], Path(sys.argv[2])
    changes = {k: json.loads(v) for k, v in (s.split("=", 1) for s in sys.argv[3:])}
    p = load_params("params.yaml", {"batch_size": 32, **changes})
    spec = load_task(Path("tasks") / f"{task}.yaml")
    root = Path("data") / task
    data = prepare_task_data(spec, root, p["val_fraction"], p["seed"], p["max_train_per_class"])
    test = load_task_split(spec, root, "test")
    files = [teachers / f"teacher_{i + 1}.pth" for i in range(spec.num_experts)]
    s = settings_from(MergeSettings, p)

    def acc(m, split):
        logits, _ = predict(m, split.images, data.mean, data.std)
        return round(100 * accuracy(logits, split.labels), 2)

    t = time.perf_counter()
    merged, _ = initial_model("moe", spec, files, data, s)
    t1 = time.perf_counter() - t
    dev = pick_device()
    t = time.perf_counter()
    # scratch's start, then the steps the merge runs after merging (no alignment: nothing to align)
    rand = calibrate(random_moe(spec, s.seed, s.gate_noise_std).to(dev), spec, data, s, MergeReport())
    t2 = time.perf_counter() - t
    print(json.dumps({"task": task, "changes": changes,
                      "merged": {"val": acc(merged, data.val), "test": acc(merged, test), "s": round(t1, 1)},
                      "random": {"val": acc(rand, data.val), "test": acc(rand, test), "s": round(t2, 1)}}), flush=True)


if __name__ == "__main__":
    main()
