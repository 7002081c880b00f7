"""A stage's parameters and options: ``@reads`` declares what it reads, once; the rest follows from it."""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from moe.base.errors import MoEError
from moe.base.params import SCHEMA, load_params
from moe.base.tasks import TaskSpec, load_task

from ..console import console

TASKS_DIR = Path("tasks")
TASK_OPTION = typer.Option(..., "--task", "-t", help="task name (tasks/NAME.yaml) or path of a task spec YAML")
PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="parameter file")


def task_spec(name: str) -> TaskSpec:
    path = Path(name) if name.endswith((".yaml", ".yml")) else TASKS_DIR / f"{name}.yaml"
    return load_task(path)


@functools.lru_cache(maxsize=1)
def _params_in_force() -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_params(Path("params.yaml"))
    except (MoEError, OSError):
        return {}


def _value_in_force(name: str):
    """The value params.yaml in this folder gives (shown as the option's default), else the declared one."""
    return _params_in_force().get(name, SCHEMA[name].default)


def _option(name: str) -> inspect.Parameter:
    """A keyword parameter whose Typer option is --NAME (dots become dashes), with meaning, range and default;
    a yes/no parameter gets --NAME and --no-NAME, so either way overrides params.yaml."""
    p = SCHEMA[name]
    flag = name.replace(".", "-").replace("_", "-")
    help_text = escape(f"{p.help} [{'yes or no' if p.kind is bool else p.rule or 'any'}; params.yaml: {name}]")
    option = typer.Option(None, f"--{flag}/--no-{flag}" if p.kind is bool else f"--{flag}", help=help_text,
                          show_default=str(_value_in_force(name)))
    return inspect.Parameter(name.replace(".", "__"), inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=Optional[p.kind])


def reads(*names: str):
    """Declare the parameters a stage reads, once. Each becomes a command-line option that overrides
    params.yaml; the whole file is validated before the stage starts; the stage gets ``p``, a dict of
    exactly these values (reading any other is a bug that fails loudly). dvc.yaml lists the same
    names (tests/test_dvc_yaml.py checks)."""

    names = tuple(dict.fromkeys(names))  # settings dataclasses may share a parameter (seed)

    def decorate(fn):
        signature = inspect.signature(fn)
        kept = [q for q in signature.parameters.values() if q.name != "p"]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            given = {name: kwargs.pop(name.replace(".", "__"), None) for name in names}
            values = params(kwargs.get("params_file", Path("params.yaml")), **given)
            return fn(*args, p={name: values[name] for name in names}, **kwargs)

        options = [_option(n) for n in names if SCHEMA[n].kind is not dict]  # a mapping is edited in params.yaml
        wrapper.__signature__ = signature.replace(parameters=kept + options)
        wrapper.reads = names
        return wrapper

    return decorate


def params(path: Path, **overrides) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = load_params(path, overrides)
    for w in caught:
        console.print(f"[yellow]warning:[/] {escape(str(w.message))}", soft_wrap=True)  # one line in a log
    return values


def same_command() -> list[str]:
    """This command line again, as the program torchrun runs in each process."""
    return ["-m", "stages.cli", *sys.argv[1:]]


