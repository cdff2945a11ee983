"""The one place where optional code may take over a computation: `dispatch`.

Calls go through `dispatch` at the few points where a replacement makes sense, each in plain
sight, one line: an op's `forward` (in `Op.__call__`) and `backward` (in the backward walk of
`Tensor.backward`), Adam's parameter update, col2im and the adversarial input. Nothing is
replaced until a package installs an overrider with `install`: `tinyseg.cuda` does, when it is imported, to run hand-written CUDA kernels on CuPy
arrays. With no overrider, `dispatch(target, method, plain, *args)` is exactly `plain(*args)`.

See: tinyseg/cuda/registry.py (the overrider), tests/cuda/test_cuda_registry.py.
"""
from __future__ import annotations

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
