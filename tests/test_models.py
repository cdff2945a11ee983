"""Table-1 FCNs, the multi-scale FCN, the eight variants and the layers' plumbing."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import F
from tinyseg.gradcheck import check_backward
from tinyseg.models import FCN, FCN_CONFIGS, VARIANTS, MultiScaleFCN, build_model
from tinyseg.nn import PositionPrior, prior_logit_init


def test_fcn1_has_the_papers_parameter_count() -> None:
    assert FCN("fcn1").num_parameters() == 2_233_100


def test_four_fcns_together_have_7631653_parameters_plus_fusion_weights() -> None:
    m = MultiScaleFCN()
    assert m.num_parameters() == 7_631_653 + m.alpha.size


@pytest.mark.parametrize("name", list(FCN_CONFIGS))
def test_each_table1_fcn_maps_40x40_to_logits_of_the_same_size(name: str) -> None:
    x = ts.Tensor(np.random.default_rng(0).standard_normal((2, 1, 40, 40)).astype(np.float32))
    y = FCN(name)(x)
    assert y.shape == (2, 2, 40, 40) and y.dtype == np.float32
    assert np.all(np.isfinite(y.data)) and 0.05 < float(np.std(y.data)) < 5, "Glorot init keeps logits of unit order"


def test_fcn_config_that_does_not_reach_1x1_is_refused() -> None:
    with pytest.raises(ValueError, match="not 1×1"):
        FCN((6, 3, 12, 3, 10, 3))


def test_prior_bias_initialisation_reproduces_the_clipped_empirical_prior() -> None:
    prior = np.linspace(0, 1, 1600).reshape(40, 40)
    bias = prior_logit_init(prior, (40, 40))
    p1 = np.exp(bias[1]) / (np.exp(bias[0]) + np.exp(bias[1]))
    np.testing.assert_allclose(p1, np.clip(prior, 0.01, 0.99), rtol=1e-5)
    assert np.all(PositionPrior((40, 40)).bias.data == 0)


def test_build_model_knows_all_eight_variants_and_lists_them_on_error() -> None:
    assert set(VARIANTS) == {"fcn", "adv_fcn", "fcn_crf", "adv_fcn_crf", "multi_fcn", "adv_multi_fcn",
                             "multi_fcn_crf", "adv_multi_fcn_crf"}
    with pytest.raises(ValueError, match="adv_multi_fcn_crf"):
        build_model("unet")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_runs_forward_backward(variant: str) -> None:
    m = build_model(variant, crf_graph="grid4")
    rng = np.random.default_rng(0)
    x = ts.Tensor(rng.standard_normal((2, 1, 40, 40)).astype(np.float32))
    loss = F.cross_entropy(m(x), rng.integers(0, 2, (2, 40, 40)))
    loss.backward()
    assert all(p.grad is not None and np.all(np.isfinite(p.grad)) for p in m.parameters())


def test_state_dict_round_trip_and_mismatch_errors() -> None:
    a, b = build_model("fcn", seed=0), build_model("fcn", seed=1)
    b.load_state_dict(a.state_dict())
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)
    with pytest.raises(ValueError, match="missing"):
        build_model("fcn_crf").load_state_dict(a.state_dict())


def test_crf_runs_more_iterations_in_eval_mode() -> None:
    m = build_model("fcn_crf")
    assert m.crf.training and m.eval().crf.training is False
    assert (m.crf.n_iter, m.crf.n_iter_eval) == (5, 10)


def _tiny_fcn() -> FCN:
    # A 16×16 FCN: 16 -3+1=14 → 7 → -2+1=6 → 3 → -3+1=1.
    return FCN((2, 3, 3, 2, 4, 3), prior=np.full((16, 16), 0.3), size=16, dtype=np.float64)


def _set(m, dotted: str, value) -> None:  # noqa: ANN001
    *path, leaf = dotted.split(".")
    obj = m
    for part in path:
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    setattr(obj, leaf, value)


def model_loss_with(m, names: list[str], x, y, ws) -> ts.Tensor:  # noqa: ANN001
    """Cross-entropy of `m` on (x, y) with its parameters temporarily replaced by `ws`."""
    originals = dict(m.named_parameters())
    try:
        for name, w in zip(names, ws):
            _set(m, name, w)
        return F.cross_entropy(m(x), y)
    finally:
        for name in names:
            _set(m, name, originals[name])


@pytest.mark.gradcheck
def test_tiny_fcn_loss_gradient_matches_finite_differences_for_image_and_weights() -> None:
    m = _tiny_fcn()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 1, 16, 16)), rng.integers(0, 2, (2, 16, 16))
    names = [n for n, _ in m.named_parameters()]
    check_backward(lambda img, *ws: model_loss_with(m, names, img, y, ws),
                   [x] + [p.data.copy() for _, p in m.named_parameters()], name="tiny FCN loss")
