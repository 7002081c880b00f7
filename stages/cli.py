"""The ``moe`` command: every stage of the pipeline, runnable by hand."""

import typer

from . import analyze, bench, evaluate, fetch, merge, predict, pretrain, report, train

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Merge three teacher CNNs into one Mixture-of-Experts model. Stages run in this order: "
                       "fetch, pretrain, merge, train, evaluate, analyze, report (dvc repro runs them all).")
for module in (fetch, pretrain, merge, train, evaluate, analyze, report, predict, bench):
    app.registered_commands.extend(module.app.registered_commands)

if __name__ == "__main__":
    app()
