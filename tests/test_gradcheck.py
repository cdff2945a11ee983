"""Every registered op passes its float64 finite-difference check: one small case per op in a plain
`pytest`, every case (on NumPy and, with a GPU, CuPy) with `pytest --gradcheck`; every Op has a
case, and the checker itself catches wrong gradients."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg  # noqa: F401  (imports every op module, so every case is registered)
from tinyseg.autodiff import Op
from tinyseg.gradcheck import GRADCHECK_CASES, GradcheckError, all_op_classes, check_backward, run_case


def _load_all() -> None:
    import importlib
    import pkgutil

    import tinyseg as ts

    for mod in pkgutil.walk_packages(ts.__path__, "tinyseg."):
        if mod.name.startswith(("tinyseg.commands", "tinyseg.cli", "tinyseg.__main__")):
            continue
        importlib.import_module(mod.name)


_load_all()


@pytest.mark.gradcheck
@pytest.mark.parametrize("name", sorted(GRADCHECK_CASES))
def test_registered_gradcheck_case(name: str, xp) -> None:  # noqa: ANN001
    run_case(GRADCHECK_CASES[name], xp=xp)


def _quick_cases() -> dict[str, str]:
    """One small case per op class: the case with the fewest input elements among those that
    exercise it (ties by name), so that a plain `pytest` checks every op's backward."""
    import numpy as np

    size = {name: sum(np.size(a) for a in case.make_inputs(np.random.default_rng(0)))
            for name, case in GRADCHECK_CASES.items()}
    quick: dict[str, str] = {}
    for name in sorted(GRADCHECK_CASES, key=lambda n: (size[n], n)):
        for op in GRADCHECK_CASES[name].ops:
            quick.setdefault(f"{op.__module__}.{op.__qualname__}", name)
    return dict(sorted(quick.items()))


QUICK = _quick_cases()


@pytest.mark.parametrize("op", list(QUICK))
def test_quick_gradcheck_of_every_op(op: str) -> None:
    """Runs without --gradcheck: the float64 check of one small case per op, on NumPy."""
    run_case(GRADCHECK_CASES[QUICK[op]])


def test_every_op_has_gradcheck_case() -> None:
    covered = {op for case in GRADCHECK_CASES.values() for op in case.ops}
    missing = [f"{cls.__module__}.{cls.__qualname__}" for cls in all_op_classes()
               if cls not in covered and cls.__module__.startswith("tinyseg.")]
    assert not missing, f"Op classes without a registered gradcheck case: {missing}"


class _WrongExpOp(Op):
    """exp with a deliberately wrong backward (forgets the upstream gradient)."""

    def forward(self, x):  # noqa: ANN001, ANN201
        self.y = np.exp(x)
        return self.y

    def backward(self, gy):  # noqa: ANN001, ANN201
        return self.y


def test_check_backward_catches_wrong_backward() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(GradcheckError, match="input 0"):
        check_backward(lambda t: _WrongExpOp()(t), [x], name="wrong_exp")


def test_check_backward_uses_random_upstream_gradient() -> None:
    # A backward that returns exp(x) * mean(gy) is right for an all-ones upstream gradient only.
    class OnesOnly(Op):
        def forward(self, x):  # noqa: ANN001, ANN201
            self.y = np.exp(x)
            return self.y

        def backward(self, gy):  # noqa: ANN001, ANN201
            return self.y * gy.mean()

    x = np.random.default_rng(1).standard_normal((4,))
    with pytest.raises(GradcheckError):
        check_backward(lambda t: OnesOnly()(t), [x], name="ones_only")


def test_check_backward_random_directions_catch_wrong_backward() -> None:
    x = np.random.default_rng(2).standard_normal((50, 50))  # 2,500 elements: directional checks
    with pytest.raises(GradcheckError, match="random direction"):
        check_backward(lambda t: _WrongExpOp()(t), [x], name="wrong_exp_big")
    check_backward(lambda t: tinyseg.F.exp(t), [x], name="exp_big")  # and a right one passes


def test_check_backward_failure_message_names_case_input_index_values() -> None:
    x = np.random.default_rng(3).standard_normal((2, 2))
    with pytest.raises(GradcheckError) as info:
        check_backward(lambda t: _WrongExpOp()(t), [x], name="my_case")
    msg = str(info.value)
    assert "my_case" in msg and "input 0" in msg and "index" in msg and "analytic" in msg and "numerical" in msg


def test_check_backward_asserts_each_gradient_has_its_inputs_dtype(monkeypatch) -> None:  # noqa: ANN001
    import tinyseg.autodiff as autodiff

    monkeypatch.setattr(autodiff, "_checked_gradient", lambda op, x, gx: gx.astype(np.float32))
    with pytest.raises(GradcheckError, match="dtype float32"):
        check_backward(lambda a: tinyseg.F.mul(a, 2.0), [np.ones(3)])
