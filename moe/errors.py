"""One exception type for every user-facing failure.

Stages catch it and print its message as one line, so every message names the file or option at fault.
"""


class MoEError(Exception):
    """A failure caused by input, configuration or environment rather than a bug."""
