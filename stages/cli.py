"""The ``moe`` command: every stage of the pipeline, runnable by hand."""

import typer

from . import analyze, evaluate, fetch, merge, pretrain, train

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Merge three teacher CNNs into one Mixture-of-Experts model. Stages run in this order: "
                       "fetch, pretrain, merge, train, evaluate, analyze (dvc repro runs them all).")
for module in (fetch, pretrain, merge, train, evaluate, analyze):
    app.registered_commands.extend(module.app.registered_commands)

if __name__ == "__main__":
    app()
