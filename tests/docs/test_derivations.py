"""The derivation pages: the worked CRF example is current and matches tinyseg's backward, and every
page links to the checks that prove it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from helpers import load_script  # tests/ is on sys.path (rootdir conftest)

import tinyseg as ts
from tinyseg import functions as F

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "docs" / "derivations"
SCRIPT = ROOT / "tools" / "derivation_numbers.py"
EXPECTED_PAGES = {"conv.md", "mean_field.md", "crf_backward.md", "image_gradient.md", "adversarial.md"}
TEST_REF = re.compile(r"`(tests/(?:\w+/)?test_\w+\.py)::(test_\w+)`")


def _load():  # noqa: ANN202
    return load_script(str(SCRIPT.relative_to(ROOT)))


def test_crf_example_fragment_is_current() -> None:
    dn = _load()
    assert dn.FRAGMENT.read_text(encoding="utf-8") == dn.render(), (
        "docs/derivations/_crf_example.md is stale: python tools/derivation_numbers.py")


def test_crf_worked_example_matches_tinyseg_backward() -> None:
    """The page's hand-derived gradients (unary, weights, image) equal F.mean_field_crf's backward."""
    dn = _load()
    ex = dn.run()
    P = dn.IMAGE.size
    unary = ts.Tensor(np.ascontiguousarray(dn.UNARY.T).reshape(1, 2, 1, P), requires_grad=True)  # (P, 2) -> (1, 2, 1, P)
    image = ts.Tensor(dn.IMAGE.reshape(1, 1, 1, P).copy(), requires_grad=True)
    weights = ts.Tensor(dn.WEIGHTS.copy(), requires_grad=True)
    z = F.mean_field_crf(unary, image, weights, n_iter=dn.N_ITER)
    loss = F.cross_entropy(z, dn.LABELS.reshape(1, 1, P))
    loss.backward()
    np.testing.assert_allclose(float(loss.data), ex.loss, rtol=0, atol=1e-12)
    np.testing.assert_allclose(z.data.reshape(2, P).T, ex.Z[-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(unary.grad.reshape(2, P).T, ex.gU, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights.grad, ex.gw, rtol=0, atol=1e-12)
    np.testing.assert_allclose(image.grad.reshape(P), ex.gI, rtol=0, atol=1e-12)
    assert np.abs(ex.gI).max() > 1e-3 and np.abs(ex.gw).max() > 1e-3  # the example exercises every path


def test_crf_worked_example_rows_of_the_unary_gradient_sum_to_zero() -> None:
    ex = _load().run()
    for g in ex.gZ.values():
        np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-15)
    np.testing.assert_allclose(ex.gU.sum(axis=1), 0, atol=1e-15)


def test_every_derivation_page_exists_and_is_in_the_nav() -> None:
    present = {p.name for p in PAGES.glob("*.md") if not p.name.startswith("_")}
    assert present == EXPECTED_PAGES
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [name for name in sorted(EXPECTED_PAGES) if f"derivations/{name}" not in nav]
    assert not missing, f"derivation pages missing from the nav of mkdocs.yml: {missing}"


def test_every_derivation_page_links_to_existing_checks() -> None:
    """Each page names at least one test as `tests/test_x.py::test_name`, and every named test exists."""
    problems = []
    for page in sorted(PAGES.glob("*.md")):
        if page.name.startswith("_"):
            continue
        refs = TEST_REF.findall(page.read_text(encoding="utf-8"))
        if not refs:
            problems.append(f"{page.name}: names no check (`tests/test_x.py::test_name`)")
        for path, name in refs:
            source = ROOT / path
            if not source.is_file() or not re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"),
                                                      re.MULTILINE):
                problems.append(f"{page.name}: {path}::{name} does not exist")
    assert not problems, "\n".join(problems)
