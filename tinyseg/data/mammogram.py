"""Full-size synthetic mammograms, for the INbreast- and CBIS-format round trips.

Each image: a half-ellipse breast on the chest wall (left edge for `L`, right for `R`), a skin
roll-off, a power-law parenchyma modulated by a glandular envelope whose strength follows the
ACR density, and 1-2 masses (P(2) = 0.1) drawn with the same mass model as the ROI canvases, at
real sizes in mm. Some images are "normal" (no mass) and carry only distractor annotations.
Values are 14-bit in uint16: air 50-150, breast tissue about 2500-9000.

See: docs/data.md (the synthetic generator), tests/data/test_data_phantom.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .masses import annotation_polygon, render_mass, sample_mass
from .phantom import Preset, get_preset, power_law_noise, sample_rng, to_stored

FIRST_FILE_ID = 20586908
REDUCED_SIZE = (1024, 832)  # (H, W): INbreast's 4084 × 3328 at 0.07 mm, reduced 4×
REDUCED_SPACING_MM = 0.28


def default_spacing(size: tuple[int, int]) -> float:
    """The pixel size (mm) that keeps the breast its physical size at image size (H, W).

    0.28 mm at the reduced 1024 × 832 default, 0.07 mm at INbreast's 4084 rows, 0.06 mm at
    4,800 rows: masses keep their size in mm, so a full-field image has them at full resolution.
    """
    return REDUCED_SPACING_MM * REDUCED_SIZE[0] / size[0]


@dataclass
class SyntheticMammogram:
    """One synthetic full-field mammogram with its annotations."""
    file_id: str  # 8 digits, as INbreast's FileID
    patient: str  # 16 hex digits, as INbreast's PatientHash
    patient_index: int
    laterality: str  # "L" or "R"
    view: str  # "CC" or "MLO"
    acr: int  # breast density 1-4
    birads: str
    pixels: np.ndarray  # (H, W) uint16
    spacing_mm: float
    masses: list = field(default_factory=list)  # dicts: polygon (K, 2) (x, y) as written, polygon_exact, meta
    distractors: list = field(default_factory=list)  # dicts: name, points (K, 2), type


def written(points: np.ndarray) -> np.ndarray:
    """Points exactly as they come back from a file that prints them with 6 decimals."""
    return np.array([[float(f"{x:.6f}"), float(f"{y:.6f}")] for x, y in points])


def _breast(rng: np.random.Generator, H: int, W: int, spacing: float) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Thickness map (H, W) in [0, 1], glandular envelope (H, W), and the ellipse (a, b, cy)."""
    a, b = rng.uniform(0.6, 0.85) * W, rng.uniform(0.4, 0.48) * H
    cy = H / 2 + rng.uniform(-0.05, 0.05) * H
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    rho = np.sqrt((xx / a) ** 2 + ((yy - cy) / b) ** 2)  # 1 on the skin line
    roll = rng.uniform(8, 15) / spacing  # roll-off width in pixels
    d = np.clip((1 - rho) * min(a, b) / roll, 0, 1)
    thickness = np.sqrt(1 - (1 - d) ** 2)  # a round edge: intensity falls toward the skin
    env = np.exp(-(((xx - 0.35 * a) / (0.4 * a)) ** 2 + ((yy - cy) / (0.45 * b)) ** 2) / 2)
    return thickness, env, (a, b, cy)


def generate_mammogram(preset: Preset, data_seed: int, image_index: int, n_masses: int, *,
                       size: tuple[int, int] = REDUCED_SIZE, spacing_mm: float | None = None) -> SyntheticMammogram:
    """Generate one mammogram with `n_masses` masses (0 for a normal image).

    Args:
        preset: mass shape/margin mix and contrast.
        data_seed: the data seed; with `image_index`, selects the image's own random stream.
        image_index: the image's index within the preset.
        n_masses: 0, 1 or 2.
        size: (H, W); default a 4× reduced INbreast geometry (4084×3328 at 0.07 mm). A full-field
            size such as (4800, 3000) takes ~10 s and ~1 GB per image.
        spacing_mm: pixel size in mm (default `default_spacing(size)`).
    """
    rng = sample_rng(data_seed, preset, 1, image_index)
    H, W = size
    spacing_mm = default_spacing(size) if spacing_mm is None else spacing_mm
    thickness, env, (a, b, cy) = _breast(rng, H, W, spacing_mm)
    acr = int(rng.integers(1, 5))
    density = 0.25 * acr
    sigma_local = 100.0 * (0.6 + 0.8 * env)  # background std in grey levels, higher where glandular
    texture = power_law_noise(rng, (H, W), rng.uniform(*preset.beta))
    level = 2500 + thickness * (2000 + 2500 * density * env + sigma_local * texture)
    masses, placed = [], []
    for _ in range(n_masses):
        d_mm = float(np.clip(np.exp(rng.normal(np.log(20.0), 0.5)), 5, 65))
        R = min(d_mm / 2 / spacing_mm, 0.25 * min(a, b))
        spec = sample_mass(rng, R, preset.shape_mix, preset.margin_mix, preset.contrast, preset.jitter)
        for _try in range(200):  # inside the breast, at least ~1.6 R from the skin, not overlapping
            x, y = rng.uniform(0, a), rng.uniform(cy - b, cy + b)
            inside = np.hypot(x / a, (y - cy) / b) < 1 - 1.6 * spec.r_body.max() / min(a, b)
            if inside and x > spec.r_body.max() + 4 and all(np.hypot(x - px, y - py) > 1.5 * (R + pr)
                                                          for px, py, pr in placed):
                break
        placed.append((x, y, R))
        px40 = 2 * R / 40
        level += spec.contrast * sigma_local[int(y), int(x)] * render_mass(spec, x, y, (H, W), px40)
        polygon = np.clip(annotation_polygon(spec, x, y, rng), 0, [W - 1, H - 1])
        masses.append({"polygon": polygon, "meta": {**spec.meta(), "diameter_mm": round(d_mm, 3)}})
    level += rng.normal(0.0, 1.0, (H, W)) * 0.1 * sigma_local  # quantum noise
    level = np.where(thickness > 0, level, rng.uniform(50, 150))  # air outside the breast
    # Distractors: a one-point calcification and, half the time, a small "Cluster" polygon.
    distractors = [{"name": "Calcification", "type": 19,
                    "points": np.array([[rng.uniform(0.2, 0.6) * a, cy + rng.uniform(-0.4, 0.4) * b]])}]
    if rng.random() < 0.5:
        t = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        ccx, ccy, cr = rng.uniform(0.2, 0.6) * a, cy + rng.uniform(-0.4, 0.4) * b, rng.uniform(5, 15)
        distractors.append({"name": "Cluster", "type": 15,
                            "points": np.stack([ccx + cr * np.cos(t), ccy + cr * np.sin(t)], axis=1)})
    laterality = "L" if rng.random() < 0.5 else "R"
    pixels = to_stored(level)
    if laterality == "R":  # chest wall on the right: mirror the image and every annotation
        pixels = pixels[:, ::-1].copy()
        for item in masses:
            item["polygon"][:, 0] = W - 1 - item["polygon"][:, 0]
        for item in distractors:
            item["points"][:, 0] = W - 1 - item["points"][:, 0]
    for item in masses:  # keep the analytic polygon; files carry it with 6 decimals
        item["polygon_exact"], item["polygon"] = item["polygon"], written(item["polygon"])
    for item in distractors:
        item["points"] = written(item["points"])
    birads = str(rng.choice(["4a", "4b", "4c", "5"])) if n_masses else str(rng.choice(["1", "2"]))
    return SyntheticMammogram(file_id="", patient="", patient_index=-1, laterality=laterality,
                              view=str(rng.choice(["CC", "MLO"])), acr=acr, birads=birads, pixels=pixels,
                              spacing_mm=spacing_mm, masses=masses, distractors=distractors)


def generate_mammograms(preset: str | Preset = "inbreast", data_seed: int = 0, n_masses: int | None = None,
                        n_train: int | None = None, size: tuple[int, int] = REDUCED_SIZE,
                        spacing_mm: float | None = None, p_normal: float = 0.1) -> list[SyntheticMammogram]:
    """A set of mammograms holding `n_masses` masses in all (default: the preset's count).

    Images get 1 mass, or 2 with probability 0.1 (INbreast: 116 masses in 107 images), never two
    that straddle the train/test boundary at `n_train` masses; a fraction `p_normal` of extra
    images has no mass. File ids increase, so "first masses by file id" is generation order;
    consecutive images share a patient about half the time. `size` and `spacing_mm` are those of
    `generate_mammogram` (e.g. ``size=(4800, 3000)`` for full-field images).

    Returns:
        list of `SyntheticMammogram` in file-id order.
    """
    p = preset if isinstance(preset, Preset) else get_preset(preset)
    n_masses = p.n if n_masses is None else int(n_masses)
    n_train = p.n_train if n_train is None else int(n_train)
    plan = sample_rng(data_seed, p, 2, 0)  # the layout stream: counts, ids, patients
    out, total, file_id, patient = [], 0, FIRST_FILE_ID, 0
    while total < n_masses:
        k = 0 if plan.random() < p_normal else (2 if plan.random() < 0.1 else 1)
        if k == 2 and (total + 2 > n_masses or total + 1 == n_train):
            k = 1
        m = generate_mammogram(p, data_seed, len(out), k, size=size, spacing_mm=spacing_mm)
        if out and plan.random() < 0.5:  # same patient as the previous image
            patient_id, patient_index = out[-1].patient, out[-1].patient_index
        else:
            patient += 1
            patient_id, patient_index = plan.bytes(8).hex(), patient
        m.file_id, m.patient, m.patient_index = f"{file_id:08d}", patient_id, patient_index
        out.append(m)
        file_id += int(plan.integers(1, 60))
        total += k
    return out
