"""One error type for bad input: the CLI turns it into a clear message and exit code 2."""


class AdtagError(Exception):
    """A user-facing error: bad input, a missing file, a broken model folder."""

    exit_code = 2
