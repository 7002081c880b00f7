"""The ``moe`` command: every stage of the pipeline, runnable by hand.

Commands load lazily: ``moe fetch`` imports the fetch stage and what it needs, nothing else, so
``moe --help`` answers without importing torch, and a stage's DVC deps are its own imports.
"""

import importlib

import click
import typer.main

# name -> one-line help, in pipeline order; the module stages/<name>.py holds the command
COMMANDS = {
    "fetch": "Download, unpack or generate the task's data (and any shipped checkpoints).",
    "pretrain": "Train (or take from the source) the task's teachers and score each on its own classes.",
    "merge": "Initialise the MoE from the teachers: averaged backbone, one expert per teacher, fresh router.",
    "train": "Train the MoE: cross-entropy + diversity + balance, annealed gating temperature, early stopping.",
    "evaluate": "Test a trained MoE once on the held-out test set (or any checkpoint with --checkpoint).",
    "analyze": "Which expert serves which class, and how each expert does alone.",
    "report": "Write reports/TASK.md: tables and pictures of one task's results.",
    "predict": "Classify image files with a trained MoE and show which experts it asked.",
    "bench": "Training and inference images/s on this machine against a plain fp32 reference.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"stages.{name}")
        return typer.main.get_command(module.app)

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


app = LazyGroup(name="moe", no_args_is_help=True,
                help="Merge separately trained teacher CNNs into one Mixture-of-Experts model. Stages run in this "
                     "order: fetch, pretrain, merge, train, evaluate, analyze, report (dvc repro runs them all).")

if __name__ == "__main__":
    app()
