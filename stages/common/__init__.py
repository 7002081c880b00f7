"""What every stage shares: its options and parameters (``options``), where its files go (``paths``),
and the edge where a fault becomes one line (``boundary``). Display lives in ``stages.console``."""

from ..console import RichProgress, console, say, stdout
from .boundary import stage
from .options import PARAMS_OPTION, TASK_OPTION, TASKS_DIR, params, reads, same_command, task_spec
from .paths import Paths, data_source, heading

__all__ = ["PARAMS_OPTION", "TASK_OPTION", "TASKS_DIR", "Paths", "RichProgress", "console", "data_source", "heading", "params", "reads",
           "same_command", "say", "stage", "stdout", "task_spec"]
