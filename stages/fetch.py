"""fetch: produce the task's files in the original archive layout under data/TASK."""

from pathlib import Path

import typer

from moe.base.formats import save_json
from moe.sources.fetching import fetch

from .common import PARAMS_OPTION, TASK_OPTION, Paths, reads, say, stage, task_spec

app = typer.Typer(add_completion=False)


@app.command("fetch")
@stage
@reads("source", "archive", "demo.train_per_class", "demo.test_per_class", "seed")
def fetch_command(task: str = TASK_OPTION, params_file: Path = PARAMS_OPTION, *, p: dict):
    """Download, unpack or generate the task's data (and any shipped checkpoints)."""
    spec = task_spec(task)
    paths = Paths(spec.name)
    summary = fetch(spec, p["source"], paths.data, archive=p["archive"], downloads=Path("downloads"),
                    demo_train=p["demo.train_per_class"], demo_test=p["demo.test_per_class"], seed=p["seed"], say=say)
    save_json({"source": summary["source"], "classes": spec.num_classes, "test_images": summary["test_images"]},
              paths.data_record)  # in git: a clone without the data still knows where its results came from
    say(f"task {spec.name}: {summary['source']} data ready in {paths.data}")
    shared = summary["shared_classes"]
    if shared:  # every distinct image of a shared class is used once, whichever teacher's file holds it
        say("shared classes (training images in the teachers' files -> distinct, used once): "
            + ", ".join(f"{name} {entries} -> {distinct}" for name, (entries, distinct) in shared.items()))
