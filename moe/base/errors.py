"""One exception type for every user-facing failure.

Stages catch it and print its message as one line, so every message names the file or option at fault.
"""


class MoEError(Exception):
    """A failure caused by input, configuration or environment rather than a bug."""


class MissingFile(MoEError):
    """An input file that is not there; the caller may know which step makes it."""

    def __init__(self, path, what: str = "file not found"):
        super().__init__(f"{path}: {what}")
        self.path = path
