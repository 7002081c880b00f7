"""Are the teachers' features worth more than random ones? The merge's own check
(``merge.min_odds_ratio``, ``moe.core.methods.merged_or_random_start``) on a task's data: the
merged model and scratch's random start, each calibrated the same way, on validation. One JSON line.

    python scripts/random_start_probe.py own models/own/teachers seed=101

Records: docs/results/own_task/random_start_check.jsonl (this script); random_start_probe.jsonl beside
it holds an earlier version's lines, from before the check was part of the merge, with test figures.
"""

import json
import sys
import time
from pathlib import Path

from moe.base.data import prepare_task_data
from moe.base.params import load_params, settings_from
from moe.base.tasks import load_task
from moe.core.merge import MergeSettings
from moe.core.methods import initial_model


def main():
    task, teachers = sys.argv[1], Path(sys.argv[2])
    changes = {k: json.loads(v) for k, v in (s.split("=", 1) for s in sys.argv[3:])}
    p = load_params("params.yaml", {"batch_size": 32, **changes})
    if p["merge.min_odds_ratio"] <= 0:
        sys.exit("merge.min_odds_ratio is 0: the merge runs no check to probe")
    spec = load_task(Path("tasks") / f"{task}.yaml")
    data = prepare_task_data(spec, Path("data") / task, p["val_fraction"], p["seed"], p["max_train_per_class"])
    files = [teachers / f"teacher_{i + 1}.pth" for i in range(spec.num_experts)]
    started = time.perf_counter()
    _, report = initial_model("moe", spec, files, data, settings_from(MergeSettings, p))
    print(json.dumps({"task": task, "teachers": str(teachers), "changes": changes,
                      "min_odds_ratio": p["merge.min_odds_ratio"], "merged": {"val": report.merged_val_accuracy},
                      "random": {"val": report.random_val_accuracy}, "val_images": len(data.val),
                      "odds_ratio": round(report.odds_ratio, 3),
                      "started_random": report.started_random,
                      "seconds": {**report.seconds, "total": round(time.perf_counter() - started, 1)},
                      "load": open("/proc/loadavg").read().split()[:3]}), flush=True)


if __name__ == "__main__":
    main()
