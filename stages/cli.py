"""The ``moe`` command: every stage of the pipeline, runnable by hand.

Commands load lazily: ``moe fetch`` imports the fetch stage and what it needs, nothing else, so
``moe --help`` answers without importing torch, and a stage's DVC deps are its own imports.
"""

import importlib

import typer
import typer.core
import typer.main

# name -> one-line help, in pipeline order; the module stages/<name>.py holds the command
COMMANDS = {
    "check": "Validate the whole params.yaml (dvc repro runs this before any stage).",
    "fetch": "Download, unpack or generate the task's data (and any shipped checkpoints).",
    "pretrain": "Train (or take from the source) the task's teachers and score each on its own classes.",
    "merge": "Initialise the MoE from the teachers: averaged backbone, one expert per teacher, fresh router.",
    "train": "Train the MoE: cross-entropy + diversity + balance, annealed gating temperature, early stopping.",
    "evaluate": "Test a trained MoE once on the held-out test set (or any checkpoint with --checkpoint).",
    "analyze": "Which expert serves which class, and how each expert does alone.",
    "compare": "The trained MoE against the merged model, the teachers' ensemble and the routing oracle.",
    "variant": "Train one variant of the comparison (params.yaml comparison.variants) and record its figures.",
    "comparison": "Every variant of the comparison beside the untrained baselines: table, JSON and plot.",
    "report": "Write reports/TASK.md: tables and pictures of one task's results.",
    "summary": "The headline figures of every task, in one table that fits 80 columns.",
    "new-task": "Write tasks/NAME.yaml from an image folder and add it to params.yaml's task list.",
    "export-images": "Write a fetched task's images as an image folder (train/ and test/ by class).",
    "export-teacher": "Write a trained course-CNN teacher as an ONNX file (classes and normalisation in its metadata).",
    "predict": "Classify image files with a trained MoE and show which experts it asked.",
    "bench": "Training and inference images/s on this machine against a plain fp32 reference.",
}


MODULE_OF = {"summary": "report", "new-task": "new_task", "export-images": "new_task", "export-teacher": "export_teacher"}  # commands that live in another command's module


class LazyGroup(typer.core.TyperGroup):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"stages.{MODULE_OF.get(name, name)}")
        command = typer.main.get_command(module.app)
        commands = getattr(command, "commands", None)  # a module with several commands gives a group
        return commands[name] if commands else command

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


app = typer.Typer(cls=LazyGroup, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Merge separately trained teacher CNNs into one Mixture-of-Experts model. Stages run in this "
                       "order: check, fetch, pretrain, merge, train, evaluate, analyze, report (dvc repro runs them all).")


@app.callback()
def main():
    """Merge separately trained teacher CNNs into one Mixture-of-Experts model."""


if __name__ == "__main__":
    app()
