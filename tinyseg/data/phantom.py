"""The synthetic mammogram-ROI generator: tinyseg's default, embedded dataset.

INbreast and DDSM-BCRP cannot be shipped, so tinyseg generates masses on a power-law (1/f^β)
parenchymal background, with BI-RADS shapes and margins, contrast, quantum noise and annotation
jitter, quantised to uint16 like the DICOM files the generator also writes. The canvases then go
through the SAME crop → resize → enhance pipeline as real data (`preprocess.mass_to_roi`).

Determinism: sample i draws from its own stream
`default_rng(SeedSequence([data_seed, preset_id, 0, i]))`, so it is identical whatever the count,
order or parallelism.

See: docs/data.md (the synthetic generator), tests/data/test_data_phantom.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import UserError
from .masses import MARGINS, SHAPES, annotation_polygon, render_mass, sample_mass
from .raster import rasterize_polygon

GENERATOR_VERSION = 2  # bump when the generated data change (part of the cache key)
# Contrast C ranges, in background standard deviations. The default was raised from (1.5, 3.5): after
# the authors' enhancement (CLAHE on 5×5-pixel tiles) such masses were nearly invisible (smoothed-intensity
# AUC 0.76) and no FCN beat the prior-only baseline; at (2.5, 4.5) Otsu stays far below it (0.64).
DIFFICULTY = {"easy": (3.5, 6.0), "default": (2.5, 4.5), "hard": (1.5, 3.5)}


@dataclass(frozen=True)
class Preset:
    """A synthetic dataset that mimics one of the paper's datasets.  [ZX18 §4]"""
    name: str
    preset_id: int  # part of every random stream's seed
    kind: str  # "inbreast" or "ddsm": picks the adversarial ε default downstream
    n_train: int  # the first n_train masses are the training split (paper's protocol)
    n_test: int
    shape_mix: dict = field(default_factory=dict)  # BI-RADS shape -> probability
    margin_mix: dict = field(default_factory=dict)  # BI-RADS margin -> probability
    contrast: tuple = DIFFICULTY["default"]  # C ~ U(lo, hi), in background standard deviations
    beta: tuple = (2.5, 3.5)  # power-law exponent of the parenchyma spectrum
    noise: tuple = (0.05, 0.15)  # quantum noise std at the 40-px scale, in background std
    jitter: tuple = (0.5, 1.0)  # annotation vertex jitter std, canvas pixels
    canvas: int = 192  # ROI-mode canvas side in pixels (tight boxes)
    # Canvas side for drawn boxes: a box up to 1.8× the mass box, anywhere around a mass up to ~165 px
    # wide near the centre, must fit without being shifted or clipped (192 px fails for about a third).
    drawn_canvas: int = 448
    radius: tuple = (30.0, 50.0)  # RMS mass radius in canvas pixels

    @property
    def n(self) -> int:
        return self.n_train + self.n_test


PRESETS = {
    "inbreast": Preset("inbreast", 0, "inbreast", 58, 58,
                       {"round": .15, "oval": .30, "lobulated": .15, "irregular": .40},
                       {"circumscribed": .30, "obscured": .20, "microlobulated": .05, "ill_defined": .25,
                        "spiculated": .20}),
    "ddsm_bcrp": Preset("ddsm_bcrp", 1, "ddsm", 84, 87,
                        {"round": .05, "oval": .10, "lobulated": .15, "irregular": .70},
                        {"spiculated": .65, "ill_defined": .35}),
}


def get_preset(name: str = "inbreast", difficulty: str | None = None, **overrides) -> Preset:
    """A preset by name, optionally with a difficulty (`easy`, `default`, `hard`) or field overrides.

    Example:
        >>> get_preset("inbreast", difficulty="hard").contrast
        (1.5, 3.5)
    """
    if name not in PRESETS:
        raise UserError(f"unknown phantom preset {name!r}; use one of {sorted(PRESETS)}")
    preset = PRESETS[name]
    if difficulty is not None:
        if difficulty not in DIFFICULTY:
            raise UserError(f"unknown difficulty {difficulty!r}; use one of {sorted(DIFFICULTY)}")
        preset = replace(preset, contrast=DIFFICULTY[difficulty])
    bad = [k for k in overrides if k not in Preset.__dataclass_fields__ or k in ("name", "preset_id", "kind")]
    if bad:
        raise UserError(f"unknown or fixed preset fields {sorted(bad)}")
    for key in ("shape_mix", "margin_mix"):
        allowed = SHAPES if key == "shape_mix" else MARGINS
        if key in overrides and not set(overrides[key]) <= set(allowed):
            raise UserError(f"{key} keys must be among {allowed}")
    return replace(preset, **overrides)


def sample_rng(data_seed: int, preset: Preset, stream: int, index: int) -> np.random.Generator:
    """The independent random stream of one sample (stream 0: ROI canvases, 1: mammograms)."""
    return np.random.default_rng(np.random.SeedSequence([int(data_seed), preset.preset_id, stream, int(index)]))


def power_law_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float, f0: float = 1 / 64) -> np.ndarray:
    r"""Parenchyma-like texture: white noise filtered by $(f^2 + f_0^2)^{-\beta/4}$, zero mean, unit std.

    The power spectrum is then $\propto 1/f^\beta$ above $f_0$ (Burgess: β ≈ 3 for breast tissue);
    $f_0$ (cycles per pixel) tames the DC singularity.
    """
    H, W = shape
    fy = np.fft.fftfreq(H)[:, None]
    fx = np.fft.rfftfreq(W)[None, :]
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) * (fy ** 2 + fx ** 2 + f0 ** 2) ** (-beta / 4)
    x = np.fft.irfft2(spectrum, s=shape)
    x -= x.mean()
    return x / x.std()


@dataclass
class PhantomROI:
    """One generated ROI canvas before preprocessing."""
    image: np.ndarray  # (S, S) uint16, 14-bit values like the DICOM writer's
    mask: np.ndarray  # (S, S) bool, the rasterised annotation polygon
    polygon: np.ndarray  # (K, 2) annotation (x, y)
    meta: dict


def to_stored(level: np.ndarray) -> np.ndarray:
    """Quantise grey levels to 14-bit values in uint16, as the DICOM writer stores them."""
    return np.clip(np.floor(level + 0.5), 0, 2 ** 14 - 1).astype(np.uint16)


def generate_roi(preset: Preset, data_seed: int, index: int) -> PhantomROI:
    """Generate ROI canvas `index` of a preset: background, one mass, noise, annotation.

    Intensities: local background level ~ U(4000, 7000) with std 100 grey levels, so the mass
    peak (C background stds) sits 2-9 % above its surroundings, as in 14-bit FFDM.
    """
    rng = sample_rng(data_seed, preset, 0, index)
    S = preset.canvas
    R = rng.uniform(*preset.radius)
    spec = sample_mass(rng, R, preset.shape_mix, preset.margin_mix, preset.contrast, preset.jitter)
    cx, cy = (S - 1) / 2 + rng.uniform(-6, 6, 2)
    beta = rng.uniform(*preset.beta)
    px40 = 2 * R / 40  # canvas pixels per pixel of the 40×40 ROI
    background = power_law_noise(rng, (S, S), beta)
    attenuation = background + spec.contrast * render_mass(spec, cx, cy, (S, S), px40)
    if spec.blob is not None:
        bx, by, bs, ba = spec.blob
        yy, xx = np.mgrid[0:S, 0:S]
        attenuation += ba * np.exp(-((xx - cx - bx) ** 2 + (yy - cy - by) ** 2) / (2 * bs * bs))
    # White quantum noise of std q at the 40-px scale has std q·px40 per canvas pixel.
    q = rng.uniform(*preset.noise)
    attenuation += rng.normal(0.0, q * px40, (S, S))
    level = rng.uniform(4000, 7000) + 100.0 * attenuation
    polygon = np.clip(annotation_polygon(spec, cx, cy, rng), 0, S - 1)
    mask = rasterize_polygon(polygon, (S, S))
    meta = {"index": int(index), "preset": preset.name, "data_seed": int(data_seed), "beta": round(beta, 4),
            "noise": round(q, 4), **spec.meta()}
    return PhantomROI(to_stored(level), mask, polygon, meta)


def generate_rois(preset: str | Preset = "inbreast", data_seed: int = 0, indices: list[int] | None = None,
                  **overrides) -> list[PhantomROI]:
    """Generate the ROI canvases of a preset (all `preset.n`, or the given indices).

    Returns:
        list of `PhantomROI`; the first `n_train` indices form the training split.
    """
    p = preset if isinstance(preset, Preset) else get_preset(preset, **overrides)
    idx = range(p.n) if indices is None else indices
    return [generate_roi(p, data_seed, i) for i in idx]
