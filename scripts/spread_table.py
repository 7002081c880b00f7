"""Mean and spread over seeds of scripts/merge_table.py's train records, one row per setting.

    python scripts/spread_table.py spread.jsonl            # markdown table on stdout
    python scripts/spread_table.py runs.jsonl 1,2,4,8,16   # only these epochs' columns
"""

import json
import statistics
import sys
from collections import defaultdict


RECIPE = {"warmup_epochs": 1.0, "label_smoothing": 0.1, "ema_decay": 0.998, "weight_decay_scope": "matrices"}


def label(record: dict) -> str:
    """The method and what was changed, the real-data recipe's four parts named as one."""
    changes = {k: v for k, v in record.get("changes", {}).items()
               if k not in ("seed", "lr") and (record["method"] == "distill" or not k.startswith("kd_"))}
    words = []
    if all(changes.get(k) == v for k, v in RECIPE.items()):
        words.append("recipe (all four parts)")
        changes = {k: v for k, v in changes.items() if k not in RECIPE}
    if changes.get("initial_temperature") == changes.get("final_temperature") is not None:
        words.append(f"constant temperature {changes.pop('initial_temperature')}")
        changes.pop("final_temperature")
    words += [f"{k}={v}" for k, v in changes.items()]
    return f"{record['method']}: " + (" + ".join(words) or "the original's recipe")


def spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main(path: str, shown: str = "") -> None:
    runs = defaultdict(list)
    for line in open(path):
        record = json.loads(line)
        if "per_epoch" in record:
            runs[label(record)].append(record)
    epochs = max(len(r["per_epoch"]) for group in runs.values() for r in group)
    try:
        columns = [int(e) - 1 for e in shown.split(",")] if shown else list(range(epochs))
    except ValueError:
        raise SystemExit(f"epochs to show: '{shown}' is not a comma-separated list of epoch numbers") from None
    if any(not 0 <= e < epochs for e in columns):
        raise SystemExit(f"epochs to show: '{shown}' asks for an epoch outside 1..{epochs} of {path}")
    head = ["setting", "seeds"] + [f"test after {e + 1}" for e in columns]
    head += [f"flipped after {epochs}", f"routing after {epochs}", "selected on validation: test", "train s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, group in runs.items():
        cells = [name, str(len(group))]
        cells += [spread([r["per_epoch"][e]["test"] for r in group if len(r["per_epoch"]) > e]) for e in columns]
        cells += [spread([r["per_epoch"][-1]["test_flip"] for r in group]), spread([r["per_epoch"][-1]["routing"] for r in group]),
                  spread([r["selected"]["test"] for r in group]), f"{statistics.mean(r['train_seconds'] for r in group):.0f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
