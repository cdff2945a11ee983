"""The `tinyseg` command.

Each subcommand lives in its own module under `tinyseg/commands/` with ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. A mistake the user can fix (a `UserError`,
a missing file, an existing run) is printed as one line and exits with status 2; anything else
is a bug in tinyseg and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ._version import __version__
from .errors import UserError

COMMANDS = ("train", "evaluate", "segment", "table2", "study", "phantom")  # modules of tinyseg.commands

# The errors a user can fix; their messages say how. FileNotFoundError: a path that does not
# exist; FileExistsError: a run directory that already holds a run.
USER_ERRORS = (UserError, FileNotFoundError, FileExistsError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `tinyseg` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="tinyseg",
        description="Adversarial deep structured nets for mass segmentation (Zhu et al., ISBI 2018), from scratch.")
    parser.add_argument("--version", action="version", version=f"tinyseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"tinyseg.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tinyseg` console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print(f"tinyseg {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
