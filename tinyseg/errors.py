"""The errors a user can fix.

A `UserError` says what was wrong with the user's input (an option, a file, a path) and how to
fix it. The `tinyseg` command prints it as one line; every other exception is a bug in tinyseg
and keeps its traceback. Both classes derive from `ValueError`, so code that catches a
`ValueError` around a call keeps working.

See: tests/test_cli.py.
"""
from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input; the message names it and the fix."""


class OptionError(UserError):
    """An option has a value that tinyseg does not accept; the message lists the allowed ones."""


class GPUUnavailableError(UserError, RuntimeError):
    """``device="gpu"`` without CuPy or a CUDA device; the message says how to install CuPy.

    Also a `RuntimeError`, which is what a missing GPU raises in CuPy itself.
    """
