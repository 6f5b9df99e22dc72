"""The error every ``cirscope`` command raises to stop with one line and exit status 2."""


class CliError(Exception):
    """An error to print as one line (no traceback) with exit status 2."""
