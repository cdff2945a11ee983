"""The preprocessing chain: rasterisation, ROI boxes, resize, enhancement, flips, normalisation, prior."""
from __future__ import annotations

import numpy as np
import pytest

from tinyseg.data import preprocess as P
from tinyseg.data.enhance import clahe, enhance, histeq
from tinyseg.data.image_io import read_image, write_dicom, write_png
from tinyseg.data.raster import rasterize_polygon
from tinyseg.data.resize import cubic, resize2d, resize_weights


def test_rasterize_square_and_triangle():
    square = np.array([[2, 2], [7, 2], [7, 7], [2, 7]], dtype=float)
    outline_fill = rasterize_polygon(square, (10, 10))
    assert outline_fill.sum() == 36 and outline_fill[2:8, 2:8].all()  # outline pixels included
    even_odd = rasterize_polygon(square, (10, 10), "even_odd")
    assert even_odd.sum() == 25 and even_odd[2:7, 2:7].all()  # half-open: exactly the area
    # Right triangle with integer vertices: the digital hypotenuse is diagonal, so outline+fill
    # covers exactly the pixels with r + c <= 6.
    tri = rasterize_polygon(np.array([[0, 0], [6, 0], [0, 6]], dtype=float), (8, 8))
    rr, cc = np.mgrid[0:8, 0:8]
    assert np.array_equal(tri, rr + cc <= 6)
    # A generic triangle (no pixel centre on an edge): even-odd equals a brute-force inside test.
    v = np.array([[1.3, 0.7], [12.6, 2.2], [4.1, 11.8]])
    got = rasterize_polygon(v, (14, 14), "even_odd")

    y, x = np.mgrid[0:14, 0:14].astype(float)  # pixel centres: x = column, y = row
    s = [(b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) for a, b in zip(v, np.roll(v, -1, axis=0))]
    want = ((s[0] > 0) & (s[1] > 0) & (s[2] > 0)) | ((s[0] < 0) & (s[1] < 0) & (s[2] < 0))
    assert np.array_equal(got, want) and want.sum() > 30
    filled = rasterize_polygon(v, (14, 14))
    assert (filled >= got).all() and filled.sum() < got.sum() + 40  # outline adds about a pixel ring


def test_rasterize_rejects_bad_polygons():
    with pytest.raises(ValueError, match="K>=3"):
        rasterize_polygon(np.array([[1.0, 1.0], [2.0, 2.0]]), (5, 5))
    with pytest.raises(ValueError, match="finite"):
        rasterize_polygon(np.array([[1.0, 1.0], [2.0, np.nan], [3.0, 1.0]]), (5, 5))
    with pytest.raises(ValueError, match="unknown raster rule"):
        rasterize_polygon(np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 1.0]]), (5, 5), "scanline")


def _naive_weights(n_in, n_out):
    """MATLAB imresize contributions, written as a plain double loop."""
    scale = n_out / n_in
    M = np.zeros((n_out, n_in))
    width = 4 / scale if scale < 1 else 4
    for i in range(n_out):
        u = (i + 1) / scale + 0.5 * (1 - 1 / scale)
        js = np.arange(int(np.floor(u - width / 2)), int(np.floor(u - width / 2)) + int(np.ceil(width)) + 2)
        w = np.array([(scale * cubic(scale * (u - j)) if scale < 1 else cubic(u - j)) for j in js])
        w = w / w.sum()
        for j, wj in zip(js, w):
            k = (j - 1) % (2 * n_in)
            M[i, k if k < n_in else 2 * n_in - 1 - k] += wj
    return M


@pytest.mark.parametrize("n_in,n_out", [(9, 4), (40, 40), (5, 11), (123, 40)])
def test_resize_weights_match_naive_matlab_contributions(n_in, n_out):
    M = resize_weights(n_in, n_out)
    np.testing.assert_allclose(M, _naive_weights(n_in, n_out), atol=1e-12)
    np.testing.assert_allclose(M.sum(axis=1), 1.0, atol=1e-12)


def test_resize_same_size_is_identity_and_keeps_constants():
    x = np.random.default_rng(0).normal(size=(17, 23))
    np.testing.assert_allclose(resize2d(x, x.shape), x, atol=1e-12)
    np.testing.assert_allclose(resize2d(np.full((90, 61), 3.5)), 3.5, atol=1e-12)


def test_scale_box_shifts_a_box_back_inside_keeping_its_size():
    assert P.scale_box((10, 20, 29, 39), 1.0, (100, 100)) == (10, 20, 29, 39)
    # Away from the edges a 20×10 box scaled by 1.2 spans -1.9..20.9 → 23 × 11 pixels after rounding.
    free = P.scale_box((20, 20, 39, 29), 1.2, (100, 100))
    assert (free[2] - free[0], free[3] - free[1]) == (23, 11)
    x0, y0, x1, y1 = P.scale_box((0, 0, 19, 9), 1.2, (50, 50))  # would leave at the top-left corner
    assert (x0, y0) == (0, 0) and (x1 - x0, y1 - y0) == (23, 11)
    x0, y0, x1, y1 = P.scale_box((80, 90, 99, 99), 1.2, (100, 100))  # bottom-right corner
    assert (x1, y1) == (99, 99) and (x1 - x0, y1 - y0) == (23, 11)
    assert P.scale_box((0, 0, 9, 9), 3.0, (12, 12)) == (0, 0, 11, 11)  # larger than the image: clipped


def test_extract_roi_at_crop_scale_one_is_the_mask_bbox():
    img = np.arange(60 * 50, dtype=np.uint16).reshape(60, 50)
    mask = np.zeros((60, 50), bool)
    mask[10:21, 5:31] = True
    roi, roi_mask, box = P.extract_roi(img, mask)
    assert box == (5, 10, 30, 20) and roi.shape == (11, 26) and roi_mask.all() and roi.dtype == np.uint16
    with pytest.raises(ValueError, match="empty mask"):
        P.extract_roi(img, np.zeros_like(mask))


def test_mass_to_roi_gt_dilation_grows_the_box():
    img = np.random.default_rng(5).integers(1000, 2000, (80, 90)).astype(np.uint16)
    mask = np.zeros((80, 90), bool)
    mask[30:51, 20:61] = True
    roi, label, box = P.mass_to_roi(img, mask)
    assert box == (20, 30, 60, 50) and roi.shape == (1, 40, 40) and label.all()
    _, label3, box3 = P.mass_to_roi(img, mask, gt_dilate_px=3)
    assert box3 == (17, 27, 63, 53) and not label3.all()  # the dilated rectangle has rounded corners


def test_resize_roi_keeps_integer_dtype_and_thresholds_label():
    rng = np.random.default_rng(1)
    roi = rng.integers(3000, 4000, (77, 93)).astype(np.uint16)
    mask = np.zeros((77, 93), bool)
    mask[:, :46] = True
    img, lab = P.resize_roi(roi, mask)
    assert img.dtype == np.uint16 and img.shape == (40, 40) and lab.dtype == np.int64
    assert set(np.unique(lab)) == {0, 1} and 19 <= lab[0].sum() <= 21
    _, lab_nn = P.resize_roi(roi, mask, label_resize="nearest")
    assert 19 <= lab_nn[0].sum() <= 21
    with pytest.raises(ValueError, match="label_resize"):
        P.resize_roi(roi, mask, label_resize="linear")


@pytest.mark.parametrize("mode", ["data", "dtype"])
def test_enhance_has_at_most_64_levels(mode):
    rng = np.random.default_rng(2)
    for _ in range(5):
        roi = (5000 + 300 * rng.standard_normal((40, 40))).clip(0, 16383).astype(np.uint16)
        e = enhance(roi, mode)
        assert e.dtype == np.float32 and e.shape == (40, 40)
        assert len(np.unique(e)) <= 64 and e.min() == 0.0 and e.max() == 1.0


def test_enhance_edge_cases():
    assert not enhance(np.full((40, 40), 7, np.uint16)).any()  # constant ROI: nothing to stretch
    with pytest.raises(ValueError, match="dtype_max"):
        enhance(np.random.default_rng(0).random((40, 40)), "dtype")
    with pytest.raises(ValueError, match="NaN"):
        enhance(np.full((40, 40), np.nan))
    with pytest.raises(ValueError, match="clahe_hist_range"):
        enhance(np.ones((40, 40), np.uint16), "full")


def test_histeq_is_monotone_and_clahe_stays_in_unit_range():
    x = np.random.default_rng(3).random((40, 40))
    h = histeq(x, 64)
    order = np.argsort(x.ravel())
    assert (np.diff(h.ravel()[order]) >= 0).all() and len(np.unique(h)) == 64
    c = clahe(x, (0.0, 1.0))
    assert c.shape == x.shape and 0 <= c.min() and c.max() <= 1


def test_flip4_order_and_normalization_statistics_are_flip_symmetric():
    rng = np.random.default_rng(4)
    x = rng.random((3, 1, 40, 40)).astype(np.float32)
    y = (rng.random((3, 40, 40)) > 0.5).astype(np.int64)
    xa, ya = P.flip4(x, y)
    assert xa.shape == (12, 1, 40, 40) and ya.shape == (12, 40, 40)
    np.testing.assert_array_equal(xa[5], x[1, :, :, ::-1])
    np.testing.assert_array_equal(xa[6], x[1, :, ::-1, :])
    np.testing.assert_array_equal(ya[7], y[1, ::-1, ::-1])
    mu, sigma = P.fit_normalization(xa)
    assert mu.shape == (1, 40, 40) and sigma.shape == (1, 40, 40)
    assert not np.allclose(x.mean(axis=0), x.mean(axis=0)[..., ::-1], atol=1e-3)  # raw stack is not symmetric
    for stat in (mu, sigma):
        for flipped in (stat[..., ::-1], stat[..., ::-1, :], stat[..., ::-1, ::-1]):
            np.testing.assert_allclose(flipped, stat, atol=1e-6)
    z = P.normalize(xa, mu, sigma)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    with pytest.raises(ValueError, match="fit_normalization"):
        P.normalize(xa, mu[0], sigma)


def test_fit_normalization_adds_epsilon_for_constant_pixels():
    x = np.zeros((4, 1, 40, 40), np.float32)
    _, sigma = P.fit_normalization(x)
    assert np.allclose(sigma, 1e-6)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        P.fit_normalization(np.zeros((4, 40, 40)))


def test_empirical_prior_and_prior_baseline():
    labels = np.zeros((4, 40, 40), np.int64)
    labels[:, 10:30, 5:25] = 1  # off-centre horizontally
    raw = P.empirical_prior(labels, symmetric=False)
    sym = P.empirical_prior(labels)
    assert raw[20, 6] == 1.0 and np.allclose(sym, sym[:, ::-1]) and np.allclose(sym, sym[::-1])
    pred = P.prior_baseline_predict(raw, 3)
    assert pred.shape == (3, 40, 40) and pred.dtype == np.int64 and np.array_equal(pred[2], labels[0])
    assert not P.prior_baseline_predict(np.full((40, 40), 0.5), 1).any()  # exactly 0.5 → background


def test_prepare_roi_and_paste_mask_round_trip():
    img = np.full((300, 200), 1000.0)
    img[100:160, 50:130] = 1500.0
    roi, box = P.prepare_roi(img, (50, 100, 129, 159))
    assert roi.shape == (1, 40, 40) and roi.dtype == np.float32 and box == (50, 100, 129, 159)
    full = P.paste_mask(np.ones((40, 40), np.int64), box, img.shape)
    assert full.dtype == np.uint8 and full.sum() == 60 * 80 and full[100:160, 50:130].all()
    whole, wbox = P.prepare_roi(img)
    assert wbox == (0, 0, 199, 299) and whole.shape == (1, 40, 40)
    with pytest.raises(ValueError, match="ROI box"):
        P.prepare_roi(img, (0, 0, 250, 10))
    with pytest.raises(ValueError, match="outside"):
        P.paste_mask(np.ones((40, 40)), (0, 0, 500, 10), img.shape)


def test_read_image_reads_npy_png_and_dicom(tmp_path):
    arr = (np.arange(30 * 20).reshape(30, 20) * 20).astype(np.uint16)
    np.save(tmp_path / "a.npy", arr)
    write_png(tmp_path / "a.png", arr)
    write_dicom(tmp_path / "a.dcm", arr)
    for name in ("a.npy", "a.png", "a.dcm"):
        got = read_image(tmp_path / name)
        assert got.dtype == np.float64 and np.array_equal(got, arr), name
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.png")
