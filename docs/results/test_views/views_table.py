"""Accuracy of a trained Task A model under each set of test-time views, on the validation hold-out
(which decides) and on the test set, for a pipeline folder whose `dvc repro` trained the model:

    python docs/results/test_views/views_table.py /path/to/that/folder >> views.jsonl

One JSON line per shift: the model folder, the shift, and "part:views" accuracies in percent.
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # this checkout's code, whatever the folder's
root = os.path.abspath(sys.argv[1])
os.chdir(root)

from moe.base.data import load_task_split, prepare_task_data  # noqa: E402
from moe.base.params import load_params  # noqa: E402
from moe.core.checkpoints import load_moe, normalisation_of  # noqa: E402
from moe.core.inference import accuracy, predict  # noqa: E402
from stages.common.options import task_spec  # noqa: E402

VIEW_SETS = {"plain": (False, 0), "flip": (True, 0), "shift": (False, None), "flip+shift": (True, None)}

p = load_params("params.yaml")
spec = task_spec("A")
model_file = f"models/A/{p['model_name']}.pth"
model = load_moe(model_file, spec)
mean, std = normalisation_of(model_file)
data = prepare_task_data(spec, "data/A", p["val_fraction"], p["seed"], p["max_train_per_class"])
test = load_task_split(spec, "data/A", "test")
for shift in (1, 2):
    row = {"folder": root, "seed": p["seed"], "shift": shift}
    for part, split in (("val", data.val), ("test", test)):
        for name, (flip, moved) in VIEW_SETS.items():
            if moved == 0 and shift > 1:
                continue  # the same as shift 1's row
            logits, _ = predict(model, split.images, mean, std, flip=flip, shift=shift if moved is None else 0)
            row[f"{part}:{name}"] = round(100 * accuracy(logits, split.labels), 2)
    print(json.dumps(row), flush=True)
