"""Subcommands of the `tinyseg` command, one module each (see tinyseg/cli.py)."""
