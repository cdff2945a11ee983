"""draw_graph draws the recorded graph: its boxes are the graph's tensors, it refuses a freed graph,
and retain_grad keeps the gradients of intermediates that it shows."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import F
from tinyseg.viz import draw_graph


def _box_texts(fig) -> list[str]:  # noqa: ANN001
    return [t.get_text() for t in fig.axes[0].texts if t.get_text()]  # arrows are empty annotations


def test_draw_graph_of_scalar_expression_shows_every_node_with_value_and_grad():
    a = ts.Tensor(np.array(0.5), requires_grad=True, name="a")
    b = ts.Tensor(np.array(-1.5), requires_grad=True, name="b")
    u = a * b
    v = u + a
    f = F.tanh(v)
    u.retain_grad()
    f.backward(retain_graph=True)
    texts = _box_texts(draw_graph(f, values=True, grads=True))
    assert len(texts) == 5                                  # a, b, a·b, +, tanh
    heads = sorted(t.splitlines()[0] for t in texts)
    assert heads == ["Add", "Mul", "Tanh", "a", "b"]
    mul = next(t for t in texts if t.startswith("Mul"))
    assert "= -0.75" in mul and f"grad {float(u.grad):.4g}" in mul
    add = next(t for t in texts if t.startswith("Add"))
    assert "grad" not in add                                # v did not ask to keep its gradient


def test_draw_graph_of_fcn_forward_has_one_box_per_op_and_leaf():
    model = ts.models.FCN(ts.models.FCN_CONFIGS["fcn1"])
    y = model(ts.Tensor(np.zeros((1, 1, 40, 40), np.float32)))
    texts = _box_texts(draw_graph(y))
    n_params = len(model.parameters())
    assert len(texts) == 10 + n_params + 1                  # 10 ops, the parameters, the input image
    assert sum(t.startswith("param") for t in texts) == n_params
    assert any(t.startswith("AddPrior\n2×2×40×40") or "1×2×40×40" in t for t in texts)


def test_draw_graph_refuses_a_graph_freed_by_backward():
    x = ts.Tensor(np.ones(3), requires_grad=True)
    y = F.sum(x * 2.0)
    y.backward()
    with pytest.raises(ValueError, match="retain_graph=True"):
        draw_graph(y)


def test_retain_grad_keeps_intermediate_gradient_and_accumulates_with_retained_graph():
    x = ts.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    y = F.sum(h * h)
    y.backward(retain_graph=True)
    np.testing.assert_allclose(h.grad, 2 * np.array([3.0, 6.0]))
    y.backward()
    np.testing.assert_allclose(h.grad, 4 * np.array([3.0, 6.0]))
    np.testing.assert_allclose(x.grad, 2 * 3 * 2 * np.array([3.0, 6.0]))
