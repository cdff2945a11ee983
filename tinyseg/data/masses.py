"""The synthetic mass model: BI-RADS shapes and margins, rendered and annotated.

The body is star-shaped, `r(θ) = R e(θ) exp(g(θ))` (an ellipse times a Gaussian random
log-radius, RMS-normalised), with a `(1 - u²)_+^α` thickness profile. Margin classes change how it
is rendered (blur, obscuring tissue, microlobulation, spicules) but never the annotated contour:
annotators draw a smooth polygon around the central mass, spicules excluded. The annotation is a
polygon sampled from the body with vertex jitter, a small honest label noise.

See: docs/data.md (the synthetic generator), tests/data/test_data_phantom.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SHAPES = ("round", "oval", "lobulated", "irregular")
MARGINS = ("circumscribed", "obscured", "microlobulated", "ill_defined", "spiculated")
# shape -> (axis-ratio range, highest harmonic k, sigma, spectral decay p): a rounder, smoother
# contour for round / oval, more and stronger harmonics for lobulated and irregular masses
SHAPE_PARAMS = {"round": ((1.0, 1.15), 7, 0.03, 2.0), "oval": ((1.3, 1.9), 7, 0.03, 2.0),
                "lobulated": ((1.0, 1.5), 9, 0.05, 1.0), "irregular": ((1.0, 1.6), 18, 0.12, 1.2)}
# margin -> edge blur in pixels of the 40×40 ROI (converted to canvas pixels by the caller's scale)
MARGIN_BLUR = {"circumscribed": (0.5, 1.0), "obscured": (0.5, 1.0), "microlobulated": (0.5, 1.0),
               "ill_defined": (2.0, 4.0), "spiculated": (1.5, 1.5)}
N_THETA = 720  # the body radius is tabulated on this many angles and interpolated


@dataclass
class MassSpec:
    """One sampled mass; every random choice is drawn once, in `sample_mass`."""
    shape: str
    margin: str
    R: float  # RMS body radius in canvas pixels
    contrast: float  # peak height in units of the background std (C)
    alpha: float  # profile exponent of (1 - u²)^alpha
    blur40: float  # edge blur in 40-px ROI pixels
    r_body: np.ndarray  # (N_THETA,) annotated body radius (px) at THETA
    r_render: np.ndarray  # (N_THETA,) rendered radius: the body plus microlobulation
    spicules: list = field(default_factory=list)  # each (M, 2) path offsets (dx, dy) + amplitude
    blob: tuple | None = None  # obscuring tissue: (dx, dy, sigma_px, amplitude in background std)
    jitter_px: float = 0.75

    def meta(self) -> dict:
        """JSON-friendly summary for dataset metadata."""
        return {"shape": self.shape, "margin": self.margin, "radius_px": round(self.R, 3),
                "contrast": round(self.contrast, 4), "n_spicules": len(self.spicules)}


THETA = np.linspace(0.0, 2 * np.pi, N_THETA, endpoint=False)


def _choice(rng: np.random.Generator, mix: dict[str, float]) -> str:
    names = list(mix)
    p = np.array([mix[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_mass(rng: np.random.Generator, R: float, shape_mix: dict[str, float],
                margin_mix: dict[str, float], contrast: tuple[float, float],
                jitter: tuple[float, float] = (0.5, 1.0)) -> MassSpec:
    """Draw one mass: shape, margin, body radius function, profile, spicules, obscuring blob.

    Args:
        rng: the sample's own random stream.
        R: RMS radius in canvas pixels.
        shape_mix: shape class probabilities (names from `SHAPES`).
        margin_mix: margin class probabilities (names from `MARGINS`).
        contrast: range of C, the peak height in background standard deviations.
        jitter: range of the annotation's vertex jitter (canvas pixels).
    """
    shape, margin = _choice(rng, shape_mix), _choice(rng, margin_mix)
    (a_lo, a_hi), kmax, sigma, p = SHAPE_PARAMS[shape]
    a, phi = rng.uniform(a_lo, a_hi), rng.uniform(0, np.pi)
    d = THETA - phi
    ellipse = a / np.sqrt(np.cos(d) ** 2 + a * a * np.sin(d) ** 2)
    k = np.arange(2, kmax + 1)
    c = rng.normal(0.0, sigma * (k / 2.0) ** (-p / 2))  # variance sigma² (k/2)^-p
    psi = rng.uniform(0, 2 * np.pi, k.size)
    g = (c[:, None] * np.cos(k[:, None] * THETA[None, :] + psi[:, None])).sum(axis=0)  # (N_THETA,)
    if shape == "lobulated":
        g = g + rng.uniform(0.08, 0.16) * np.cos(rng.integers(3, 6) * THETA + rng.uniform(0, 2 * np.pi))
    base = ellipse * np.exp(g)
    norm = R / np.sqrt(np.mean(base ** 2))
    micro = np.zeros_like(THETA)
    if margin == "microlobulated":  # rendered, not annotated: annotators draw smooth polygons
        km = rng.integers(14, 29, 2)[:, None]  # two high harmonics, amplitude 0.02-0.05 each
        amp, psi_m = rng.uniform(0.02, 0.05, (2, 1)), rng.uniform(0, 2 * np.pi, (2, 1))
        micro = (amp * np.cos(km * THETA[None, :] + psi_m)).sum(axis=0)  # (N_THETA,)
    C = rng.uniform(*contrast) * (0.7 if margin == "ill_defined" else 1.0)
    spec = MassSpec(shape=shape, margin=margin, R=float(R), contrast=float(C), alpha=rng.uniform(0.4, 1.0),
                    blur40=rng.uniform(*MARGIN_BLUR[margin]), r_body=base * norm,
                    r_render=base * norm * np.exp(micro), jitter_px=rng.uniform(*jitter))
    if margin == "spiculated":
        spec.spicules = [_spicule(rng, spec) for _ in range(rng.integers(6, 17))]
    if margin == "obscured":
        t = rng.uniform(0, 2 * np.pi)
        rb = np.interp(t, THETA, spec.r_body, period=2 * np.pi) * rng.uniform(0.9, 1.3)
        spec.blob = (rb * np.cos(t), rb * np.sin(t), 0.6 * R, rng.uniform(0.8, 1.5))
    return spec


def _spicule(rng: np.random.Generator, spec: MassSpec) -> tuple[np.ndarray, float, float]:
    """A random-walk spicule from 0.9 r(θ0) outwards: (path (M, 2) offsets, amplitude, width)."""
    t0 = rng.uniform(0, 2 * np.pi)
    r0 = 0.9 * np.interp(t0, THETA, spec.r_body, period=2 * np.pi)
    n = max(int(rng.uniform(0.4, 1.4) * spec.R * 2), 4)  # half-pixel steps
    angle = t0 + np.cumsum(rng.normal(0.0, 0.02, n))
    path = np.stack([r0 * np.cos(t0) + np.cumsum(0.5 * np.cos(angle)),
                     r0 * np.sin(t0) + np.cumsum(0.5 * np.sin(angle))], axis=1)  # (n, 2) (dx, dy)
    return path, rng.uniform(0.3, 0.6), rng.uniform(1.0, 2.0)


def render_mass(spec: MassSpec, cx: float, cy: float, shape: tuple[int, int], px40: float) -> np.ndarray:
    r"""The mass's normalised thickness profile t̃ on a canvas of `shape` (H, W).

    $t = (1 - u^2)_+^\alpha$ with $u = \rho / r(\theta)$, blurred by the margin's edge blur, plus
    tapered spicules; divided by the blurred body's peak so that the core is 1.

    Args:
        spec: the mass.
        cx: centre's column in canvas pixels (x).
        cy: centre's row in canvas pixels (y).
        shape: (H, W) canvas.
        px40: canvas pixels per pixel of the 40×40 ROI (scales the blur).

    Returns:
        (H, W) float64, zero away from the mass.
    """
    from scipy import ndimage  # lazy: importing it costs ~0.5 s, and `segment` never needs it
    H, W = shape
    out = np.zeros(shape)
    reach = spec.r_render.max() + 4 * spec.blur40 * px40 + 2 * spec.R + 4
    r0, r1 = max(int(cy - reach), 0), min(int(cy + reach) + 1, H)
    c0, c1 = max(int(cx - reach), 0), min(int(cx + reach) + 1, W)
    if r1 <= r0 or c1 <= c0:
        return out
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    rho, theta = np.hypot(dx, dy), np.mod(np.arctan2(dy, dx), 2 * np.pi)
    u = rho / np.interp(theta, THETA, spec.r_render, period=2 * np.pi)
    t = np.clip(1.0 - u * u, 0.0, None) ** spec.alpha
    t = ndimage.gaussian_filter(t, spec.blur40 * px40, mode="constant")
    peak = t.max() if t.max() > 0 else 1.0
    if spec.spicules:
        line = np.zeros_like(t)
        for path, amp, width in spec.spicules:
            taper = np.linspace(amp, 0.0, len(path))
            sx = np.rint(cx + path[:, 0]).astype(int) - c0
            sy = np.rint(cy + path[:, 1]).astype(int) - r0
            ok = (sx >= 0) & (sx < c1 - c0) & (sy >= 0) & (sy < r1 - r0)
            # Half-pixel steps deposit density 2 per pixel; a Gaussian of std s spreads a unit
            # line to a peak of 1/(sqrt(2π) s), so the scale below makes the ridge peak ≈ amp.
            np.add.at(line, (sy[ok], sx[ok]), taper[ok] * 0.5 * np.sqrt(2 * np.pi) * width / 2)
        t = t + ndimage.gaussian_filter(line, width / 2, mode="constant") * peak
    out[r0:r1, c0:c1] = t / peak
    return out


def annotation_polygon(spec: MassSpec, cx: float, cy: float, rng: np.random.Generator) -> np.ndarray:
    """The annotator's polygon: vertices on the body contour plus Gaussian jitter.

    The vertex count is `clip(perimeter / 4, 20, 400)` like a hand-drawn OsiriX contour.

    Returns:
        (K, 2) float64 points `(x, y)`.
    """
    pts = np.stack([spec.r_body * np.cos(THETA), spec.r_body * np.sin(THETA)], axis=1)  # (N_THETA, 2)
    perimeter = np.linalg.norm(np.diff(pts, axis=0, append=pts[:1]), axis=1).sum()
    K = int(np.clip(perimeter / 4, 20, 400))
    t = (np.arange(K) + rng.uniform(0, 1)) * (2 * np.pi / K)
    r = np.interp(t, THETA, spec.r_body, period=2 * np.pi)
    jitter = rng.normal(0.0, spec.jitter_px, (K, 2))
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1) + jitter
