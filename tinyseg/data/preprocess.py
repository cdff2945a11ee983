"""The paper's preprocessing chain, one function per step.  [ZX18 §4]

    mass mask -> extract_roi (bounding box × crop_scale, or a drawn box; shifted inside the image)
              -> resize_roi (bicubic + antialias to 40×40; label thresholded at 0.5)
              -> enhance (CLAHE -> weight -> 64-level equalisation -> square -> min-max)
              -> flip4 (×4, training only) -> fit_normalization / normalize (per pixel)

Synthetic and real data run through the same functions (`mass_to_roi`). Boxes are
`(x0, y0, x1, y1)`: inclusive, 0-based, x = column, y = row.

See: docs/data.md (the preprocessing pipeline), tests/data/test_data_preprocess.py.
"""
from __future__ import annotations

import numpy as np

from ..config import check_choice
from ..errors import UserError
from .boxes import draw_box
from .enhance import enhance
from .image_io import read_image
from .raster import round_half_away
from .resize import resize2d

__all__ = ["ROI_SIZE", "empirical_prior", "enhance", "extract_roi", "fit_normalization", "flip4",
           "mask_box", "mass_to_roi", "normalize", "paste_mask", "prepare_roi", "prior_baseline_predict",
           "read_image", "resize_roi", "scale_box"]

ROI_SIZE = 40
Box = tuple[int, int, int, int]


def mask_box(mask: np.ndarray) -> Box:
    """The inclusive bounding box `(x0, y0, x1, y1)` of a non-empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise UserError("empty mask: a mass needs at least one foreground pixel")
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def scale_box(box: Box, crop_scale: float, shape: tuple[int, int]) -> Box:
    """Scale a box about its centre and shift it back inside the image, keeping its size.

    The authors (`rectbox.m`) shift a box that leaves the image rather than truncate it, so a
    mass at the breast edge sits off-centre in its ROI. A box larger than the image is clipped.

    Args:
        box: `(x0, y0, x1, y1)` inclusive.
        crop_scale: 1.0 (paper's `1dilbig` data, default) or e.g. 1.2 (`trainroi1.2`).
        shape: (H, W) of the image.
    """
    if crop_scale <= 0:
        raise UserError(f"crop_scale must be > 0, got {crop_scale}")
    H, W = shape
    out = []
    for lo, hi, n in ((box[0], box[2], W), (box[1], box[3], H)):
        c, h = (lo + hi) / 2, (hi - lo) / 2 * crop_scale
        a, b = int(round_half_away(c - h)), int(round_half_away(c + h))
        if a < 0:
            a, b = 0, b - a
        if b > n - 1:
            a, b = a - (b - (n - 1)), n - 1
        out.append((max(a, 0), b))
    (x0, x1), (y0, y1) = out
    return x0, y0, x1, y1


def extract_roi(image: np.ndarray, mask: np.ndarray, crop_scale: float = 1.0,
                box: Box | None = None) -> tuple[np.ndarray, np.ndarray, Box]:
    """Crop a mass ROI: the mask's bounding box scaled by `crop_scale`.  [ZX18 §4]

    Args:
        image: (H, W) raw image (stored dtype, e.g. uint16).
        mask: (H, W) bool/int mass mask (the filled contour).
        crop_scale: box scale about its centre.
        box: the box to scale instead of the mask's own (e.g. the contour's outline box).

    Returns:
        (roi_image (h, w) in the image's dtype, roi_mask (h, w) bool, the crop box).
    """
    if image.shape != mask.shape or image.ndim != 2:
        raise UserError(f"image {image.shape} and mask {mask.shape} must be the same 2-D shape")
    b = scale_box(box if box is not None else mask_box(mask), crop_scale, image.shape)
    x0, y0, x1, y1 = b
    return image[y0:y1 + 1, x0:x1 + 1], mask[y0:y1 + 1, x0:x1 + 1].astype(bool), b


def resize_roi(roi: np.ndarray, roi_mask: np.ndarray | None = None, size: int = ROI_SIZE,
               label_resize: str = "bicubic") -> tuple[np.ndarray, np.ndarray | None]:
    """Resize an ROI (anisotropically) to `size`×`size`, as MATLAB `imresize`.  [ZX18 §4]

    Args:
        roi: (h, w) image; an integer dtype is kept (rounded and clipped, as MATLAB keeps class).
        roi_mask: (h, w) mask or None.
        size: output side (40 in the paper).
        label_resize: `"bicubic"` (resize the 0/1 mask, threshold at 0.5; default) or
            `"nearest"` (the `_line1nn` variant).

    Returns:
        (image (size, size), label (size, size) int64 in {0, 1} or None).
    """
    img = resize2d(roi, (size, size))
    if np.issubdtype(roi.dtype, np.integer):
        info = np.iinfo(roi.dtype)
        img = np.clip(np.floor(img + 0.5), info.min, info.max).astype(roi.dtype)
    if roi_mask is None:
        return img, None
    check_choice("label_resize", label_resize)
    lab = resize2d(roi_mask.astype(np.float64), (size, size), method=label_resize) > 0.5
    return img, lab.astype(np.int64)


def mass_to_roi(image: np.ndarray, mask: np.ndarray, *, crop_scale: float = 1.0, box: Box | None = None,
                boxes: str = "tight", box_rng: np.random.Generator | None = None, label_resize: str = "bicubic",
                clahe_hist_range: str = "data", gt_dilate_px: int = 0,
                size: int = ROI_SIZE) -> tuple[np.ndarray, np.ndarray, Box]:
    """The whole per-mass pipeline, shared by the generator and every loader.

    Args:
        image: (H, W) raw image.
        mask: (H, W) filled mass mask.
        crop_scale: scale of the crop box about its centre (see `extract_roi`).
        box: optional outline box to crop instead of the mask's own bounding box (see `extract_roi`).
        boxes: `"tight"` (crop the mass box × `crop_scale`, the paper's protocol) or `"drawn"` (a
            box around it as a person or a detector draws it; see `tinyseg.data.boxes`).
        box_rng: the mass's random stream for `"drawn"` (`boxes.box_rng(data_seed, roi_id)`).
        label_resize: how the label is resized to 40×40 (see `resize_roi`).
        clahe_hist_range: the CLAHE histogram range (see `enhance`).
        gt_dilate_px: dilate the mask by a disk of this radius first (the authors' "dil" data).
        size: output side (40 in the paper).

    Returns:
        (roi (1, size, size) float32 enhanced, label (size, size) int64, crop box).
    """
    from scipy import ndimage  # lazy: importing it costs ~0.5 s, and `segment` never needs it
    if gt_dilate_px > 0:
        x0, y0, x1, y1 = scale_box(mask_box(mask), 1.0, mask.shape)
        r = int(gt_dilate_px)
        ys, xs = slice(max(y0 - r, 0), y1 + r + 1), slice(max(x0 - r, 0), x1 + r + 1)
        disk = np.hypot(*np.mgrid[-r:r + 1, -r:r + 1]) <= r
        mask = mask.astype(bool).copy()
        mask[ys, xs] = ndimage.binary_dilation(mask[ys, xs], disk)
        box = None
    check_choice("boxes", boxes)
    if boxes == "drawn":
        if box_rng is None:
            raise UserError("boxes='drawn' needs box_rng, the mass's stream: tinyseg.data.boxes.box_rng(seed, roi_id)")
        if crop_scale != 1.0:
            raise UserError(f"crop_scale={crop_scale} scales the tight box; drawn boxes choose their own margin. "
                            f"Use crop_scale=1.0 with boxes='drawn', or boxes='tight'.")
        box = draw_box(box if box is not None else mask_box(mask), mask.shape, box_rng)
    roi, roi_mask, b = extract_roi(image, mask, crop_scale, box)
    img40, lab40 = resize_roi(roi, roi_mask, size, label_resize)
    return enhance(img40, clahe_hist_range)[None], lab40, b


def _check_stack(images: np.ndarray, name: str = "images") -> None:
    if images.ndim != 4 or images.shape[1] != 1:
        raise UserError(f"{name} must be (N, 1, H, W), got shape {images.shape}")
    if not np.isfinite(images).all():
        raise UserError(f"{name} contain NaN or inf")


def fit_normalization(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-pixel mean and population std of a (flip-augmented) training stack.  [ZX18 §4]

    $\mu_{ij} = \mathrm{mean}_n x_{nij}$, $\sigma_{ij} = \mathrm{std}_n x_{nij} + 10^{-6}$ (ddof 0;
    the ε guards constant pixels, which the authors did not).

    Args:
        images: (N, 1, H, W) enhanced ROIs, N >= 1.

    Returns:
        (mu, sigma), each (1, H, W) float32.
    """
    _check_stack(images)
    if len(images) == 0:
        raise UserError("fit_normalization needs at least one image")
    x = images.astype(np.float64)
    return x.mean(axis=0).astype(np.float32), (x.std(axis=0) + 1e-6).astype(np.float32)


def normalize(images: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """`(x - mu) / sigma` per pixel; images (N, 1, H, W), mu and sigma (1, H, W) → float32."""
    _check_stack(images)
    if mu.shape != images.shape[1:] or sigma.shape != images.shape[1:]:
        raise UserError(f"mu {mu.shape} and sigma {sigma.shape} must be {images.shape[1:]} (from fit_normalization)")
    if (sigma <= 0).any():
        raise UserError("sigma must be positive (fit_normalization adds 1e-6)")
    return ((images - mu) / sigma).astype(np.float32)


def flip4(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """×4 flip augmentation, four consecutive samples per ROI: identity, h-flip, v-flip, both.

    Args:
        images: (N, 1, H, W).
        labels: (N, H, W).

    Returns:
        (images (4N, 1, H, W), labels (4N, H, W)).
    """
    _check_stack(images)
    if labels.shape != (images.shape[0],) + images.shape[2:]:
        raise UserError(f"labels {labels.shape} must be (N, H, W) matching images {images.shape}")

    def four(x: np.ndarray) -> np.ndarray:
        s = np.stack([x, x[..., ::-1], x[..., ::-1, :], x[..., ::-1, ::-1]], axis=1)  # (N, 4, ...)
        return s.reshape((-1,) + x.shape[1:])  # (4N, ...)

    return four(images), four(labels)


def empirical_prior(labels: np.ndarray, symmetric: bool = True) -> np.ndarray:
    """The position prior: the mean training mask, optionally flip-symmetrised.  [ZX18 Eq. 6, Fig. 2a]

    Args:
        labels: (N, H, W) un-augmented training labels in {0, 1}.
        symmetric: average over the four flips (what anything learned on flip4 data sees).

    Returns:
        (H, W) float64 in [0, 1].
    """
    labels = np.asarray(labels)
    if labels.ndim != 3 or len(labels) == 0:
        raise UserError(f"labels must be a non-empty (N, H, W) stack, got shape {labels.shape}")
    p = labels.astype(np.float64).mean(axis=0)
    if symmetric:
        p = (p + p[:, ::-1] + p[::-1, :] + p[::-1, ::-1]) / 4
    return p


def prior_baseline_predict(prior: np.ndarray, n: int) -> np.ndarray:
    """The prior-only segmenter: `prior > 0.5` for every image (pixels at exactly 0.5 → background).

    Returns:
        (n, H, W) int64.
    """
    return np.broadcast_to((np.asarray(prior) > 0.5).astype(np.int64), (n,) + np.shape(prior)).copy()


def prepare_roi(image2d: np.ndarray, box: Box | None = None, crop_scale: float = 1.0,
                clahe_hist_range: str = "data") -> tuple[np.ndarray, Box]:
    """Turn a whole image (or a box in it) into one network input, for `tinyseg segment`.

    Args:
        image2d: (H, W) image, best in its stored dtype (`read_array`): only the box is resized,
            and an integer image is resized as in training (rounded, clipped to its type).
        box: `(x0, y0, x1, y1)` inclusive; None = the whole image.
        crop_scale: scale of the box about its centre (shifted inside the image).
        clahe_hist_range: the CLAHE histogram range (see `enhance`).

    Returns:
        (roi (1, 40, 40) float32 enhanced, not normalised; the crop box used).
    """
    image2d = np.asarray(image2d)
    if image2d.ndim != 2:
        raise UserError(f"prepare_roi expects a 2-D image, got shape {image2d.shape}")
    H, W = image2d.shape
    if box is None:
        box = (0, 0, W - 1, H - 1)
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 <= x1 < W and 0 <= y0 <= y1 < H):
        raise UserError(f"ROI box {box} must satisfy 0 <= x0 <= x1 < {W} and 0 <= y0 <= y1 < {H}")
    x0, y0, x1, y1 = scale_box((x0, y0, x1, y1), crop_scale, (H, W))
    img40, _ = resize_roi(image2d[y0:y1 + 1, x0:x1 + 1])
    return enhance(img40, clahe_hist_range)[None], (x0, y0, x1, y1)


def paste_mask(mask40: np.ndarray, crop_box: Box, image_shape: tuple[int, int]) -> np.ndarray:
    """Resize a 40×40 prediction back to its crop box and paste it into a zero mask.

    Returns:
        (H, W) uint8 in {0, 1}.
    """
    mask40 = np.asarray(mask40)
    if mask40.ndim != 2:
        raise UserError(f"mask40 must be 2-D, got shape {mask40.shape}")
    x0, y0, x1, y1 = (int(v) for v in crop_box)
    H, W = image_shape
    if not (0 <= x0 <= x1 < W and 0 <= y0 <= y1 < H):
        raise UserError(f"crop box {crop_box} lies outside an image of shape {image_shape}")
    out = np.zeros((H, W), dtype=np.uint8)
    out[y0:y1 + 1, x0:x1 + 1] = resize2d(mask40.astype(np.float64), (y1 - y0 + 1, x1 - x0 + 1)) > 0.5
    return out
