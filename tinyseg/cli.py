"""The `tinyseg` command.

Each subcommand lives in its own module under `tinyseg/commands/` with ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; `COMMANDS` lists them and they are imported
only when needed, so `tinyseg --help` stays fast and works without optional dependencies.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from . import __version__

# name -> module under tinyseg.commands; a module that does not exist yet is simply not offered.
COMMANDS: dict[str, str] = {
    "train": "train",
    "evaluate": "evaluate",
    "segment": "segment",
    "table2": "table2",
    "phantom": "phantom",
}


def _load(name: str):  # noqa: ANN202
    try:
        return importlib.import_module(f"tinyseg.commands.{COMMANDS[name]}")
    except ModuleNotFoundError as e:
        if e.name == f"tinyseg.commands.{COMMANDS[name]}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyseg",
        description="Adversarial deep structured nets for mass segmentation (Zhu et al., ISBI 2018), from scratch.")
    parser.add_argument("--version", action="version", version=f"tinyseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
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
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, RuntimeError, KeyError) as e:
        print(f"tinyseg {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
