"""The one place where optional code may take over a computation: `dispatch`.

Calls go through `dispatch` at the few points where a replacement makes sense: every op's
`forward` and `backward` (`tinyseg.autodiff.Op` marks them with `overridable` when a subclass is
defined, so an op's code and `Op.__call__` read as plain calls), Adam's parameter update, col2im
and the adversarial input. Nothing is replaced until a package installs an overrider with
`install`: `tinyseg.cuda` does, when it is imported, to run hand-written CUDA kernels on CuPy
arrays. With no overrider, `dispatch(target, method, plain, *args)` is exactly `plain(*args)`.

See: tinyseg/cuda/registry.py (the overrider), tests/test_cuda_registry.py.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

Overrider = Callable[[Any, str, tuple], Any]
_overrider: Overrider | None = None


def install(overrider: Overrider | None) -> None:
    """Make `overrider(target, method, args)` the first thing `dispatch` asks (None removes it).

    The overrider returns the result, or ``NotImplemented`` to let the plain code run.
    """
    global _overrider
    _overrider = overrider


def dispatch(target: Any, method: str, plain: Callable[..., Any], *args: Any) -> Any:
    """``plain(*args)``, unless an installed overrider takes the call.

    Args:
        target: the object whose method runs (an `Op`, an optimizer), or None for a module-level
            helper.
        method: the method's or the helper's name: ``"forward"``, ``"backward"``, ``"update"``,
            ``"col2im"``, ``"adversarial_input"``.
        plain: the plain implementation, the oracle of every override.
        *args: its arguments.
    Returns:
        What the override or `plain` returns.
    """
    if _overrider is not None:
        out = _overrider(target, method, args)
        if out is not NotImplemented:
            return out
    return plain(*args)


def overridable(cls: type, *methods: str) -> None:
    """Make each of `methods` that `cls` itself defines go through `dispatch` (the method runs as
    written unless an installed overrider takes the call)."""
    for name in methods:
        plain = cls.__dict__.get(name)
        if plain is None or getattr(plain, "__wrapped__", None) is not None:
            continue

        def method(self: Any, *args: Any, _plain: Callable[..., Any] = plain, _name: str = name) -> Any:
            if _overrider is None:  # the common case, kept to one test
                return _plain(self, *args)
            return dispatch(self, _name, functools.partial(_plain, self), *args)

        setattr(cls, name, functools.wraps(plain)(method))
