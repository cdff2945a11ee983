"""The package version, in a module of its own so that any layer can read it without importing
the package root (the data cache key includes it). Keep it equal to pyproject.toml's."""

__version__ = "0.1.0"
