"""`load_dataset(spec)`: every data source behind one call, with train / val / test splits.

Specs: `phantom` (= `phantom:inbreast`), `phantom:ddsm_bcrp`, `inbreast:PATH`, `cbis:PATH`,
`folder:PATH`, `npz:PATH`. Each split holds enhanced, NOT normalised 40×40 ROIs; normalisation
statistics and the prior are fitted by training on the train split. Validation = the last
`val_frac` of the training masses in split order (12 of 58, 17 of 84), whole masses, before
flips. Built datasets are cached under `$TINYSEG_CACHE` (default `~/.cache/tinyseg`), keyed by
versions, spec, options, seed and the source files' sizes and times. [ZX18 §4]

See: docs/data.md, tests/data/test_data_phantom.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .._version import __version__
from ..config import CHOICES, check_choice
from ..errors import UserError
from .canvases import check_npz_drawn, npz_samples, phantom_samples
from .cbis import load_cbis
from .errors import WarningCounter
from .folder import DRAWN_WHOLE, load_folder
from .inbreast import load_inbreast
from .phantom import GENERATOR_VERSION, PRESETS

CACHE_FORMAT = 1  # bump when the cached arrays or the pipeline change
PIPELINE_DEFAULTS = {"boxes": "tight", "crop_scale": 1.0, "label_resize": "bicubic", "clahe_hist_range": "data",
                     "gt_dilate_px": 0}


@dataclass(frozen=True)
class Source:
    """One data source of `load_dataset`: a row of `SOURCES`.

    `build(arg, data_seed, options, pipeline, warn)` returns the samples and the data kind
    ("inbreast" or "ddsm"); `arg` is the preset (synthetic data) or the resolved path; `options`
    are the source's own options (a subset of `options`), `pipeline` the `PIPELINE_DEFAULTS` keys.
    """
    build: Callable[..., tuple[list, str]]
    options: frozenset
    spec: str  # how the spec is written, e.g. "inbreast:PATH"
    help: str  # one line for the documentation and the command line


def _phantom(arg: str, data_seed: int, options: dict, pipeline: dict, warn: WarningCounter) -> tuple[list, str]:
    return phantom_samples(arg, data_seed, warn=warn, **options, **pipeline), PRESETS[arg].kind


def _npz(arg: str, data_seed: int, options: dict, pipeline: dict, warn: WarningCounter) -> tuple[list, str]:
    return npz_samples(arg, warn, box_seed=data_seed, **pipeline)


def _reader(load: Callable[..., list], kind: str) -> Callable[..., tuple[list, str]]:
    """A `Source.build` for a reader of real data (`load(path, warn=, box_seed=, ...)`)."""
    def build(arg: str, data_seed: int, options: dict, pipeline: dict, warn: WarningCounter) -> tuple[list, str]:
        return load(arg, warn=warn, box_seed=data_seed, **options, **pipeline), kind
    return build


# Adding a source is one row here and one loader: the spec parser, the cache key, `load_dataset`'s
# option check and the --data help of every command are read from this table.
SOURCES: dict[str, Source] = {
    "phantom": Source(_phantom, frozenset({"difficulty", "preset_overrides"}), "phantom[:PRESET]",
                      "synthetic mammogram ROIs, embedded (presets: inbreast, the default, and ddsm_bcrp)"),
    "inbreast": Source(_reader(load_inbreast, "inbreast"), frozenset({"split_order", "n_train", "mirror_right",
                       "raster"}), "inbreast:PATH", "an INbreast folder (DICOM images and XML mass outlines)"),
    "cbis": Source(_reader(load_cbis, "ddsm"), frozenset({"mirror_right"}), "cbis:PATH",
                   "a CBIS-DDSM folder (DICOM images, ROI masks and the description CSVs)"),
    "folder": Source(_reader(load_folder, "inbreast"), frozenset({"roi"}), "folder:PATH",
                     "a folder of images and masks (PNG, TIFF or DICOM)"),
    "npz": Source(_npz, frozenset(), "npz:PATH", "a .npz file of canvases and masks"),
}
VALID_SPECS = ("phantom", *(f"phantom:{preset}" for preset in PRESETS),
               *(source.spec for name, source in SOURCES.items() if name != "phantom"))


def data_help(default: str | None = "phantom") -> str:
    """The --data help of every command, from `SOURCES`."""
    specs = ", ".join(s for s in VALID_SPECS if s != "phantom:inbreast")  # = plain "phantom"
    return f"data spec: {specs}" + (f" (default {default})" if default else "") + "; see docs/data.md"


@dataclass
class Split:
    """One split: images (n, 1, 40, 40) float32 enhanced, labels (n, 40, 40) int64, meta (n dicts)."""
    images: np.ndarray
    labels: np.ndarray
    meta: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class Dataset:
    """A loaded dataset: `.train`, `.val`, `.test` splits plus where it came from.

    `kind` is "inbreast" or "ddsm" (training picks the adversarial ε from it);
    `warnings` counts the data problems that were repaired or skipped.
    """
    spec: str
    name: str
    kind: str
    train: Split
    val: Split
    test: Split
    options: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, kind={self.kind!r}, train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)})")


def cache_dir() -> Path:
    """`$TINYSEG_CACHE`, or `~/.cache/tinyseg`."""
    return Path(os.environ.get("TINYSEG_CACHE") or Path.home() / ".cache" / "tinyseg")


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a spec into (source, argument): `"phantom"` → ("phantom", "inbreast")."""
    if not isinstance(spec, str) or not spec:
        raise UserError(f"data spec must be a non-empty string; valid specs: {', '.join(VALID_SPECS)}")
    source, _, arg = spec.partition(":")
    if source == "phantom":
        arg = arg or "inbreast"
        if arg not in PRESETS:
            raise UserError(f"unknown phantom preset {arg!r} in {spec!r}; valid specs: {', '.join(VALID_SPECS)}")
        return source, arg
    if source not in SOURCES:
        raise UserError(f"unknown data spec {spec!r}; valid specs: {', '.join(VALID_SPECS)}")
    if not arg:
        raise UserError(f"data spec {spec!r} needs a path, e.g. {source}:/data/{source}")
    path = Path(arg).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found (data spec {spec!r}); valid specs: {', '.join(VALID_SPECS)}")
    return source, str(path.resolve())


def _signature(path: str) -> list:
    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    return [[str(f.relative_to(p)) if f != p else f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _build(source: str, arg: str, data_seed: int, opts: dict, warn: WarningCounter) -> tuple[list, str]:
    pipeline = {k: opts[k] for k in PIPELINE_DEFAULTS}
    extra = {k: v for k, v in opts.items() if k not in PIPELINE_DEFAULTS}
    return SOURCES[source].build(arg, data_seed, extra, pipeline, warn)


def _check_drawn(source: str, arg: str, opts: dict) -> None:
    """Refuse drawn boxes where they cannot be drawn, before anything is built."""
    if opts["crop_scale"] != 1.0:
        raise UserError(f"crop_scale={opts['crop_scale']} scales the tight box; drawn boxes choose their own margin. "
                        f"Use crop_scale=1.0 with boxes='drawn', or boxes='tight'.")
    if source == "folder" and opts.get("roi", "box") == "whole":
        raise UserError(DRAWN_WHOLE)
    if source == "npz":
        check_npz_drawn(arg)


def _jsonable(x: object) -> object:
    return x.item() if isinstance(x, np.generic) else str(x)


def _save(path: Path, samples: list, kind: str, warnings: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, images=np.stack([s["image"] for s in samples]).astype(np.float32),
                 labels=np.stack([s["label"] for s in samples]).astype(np.uint8),
                 split=np.array([s["split"] for s in samples]), kind=np.array(kind),
                 meta=np.array(json.dumps([s["meta"] for s in samples], default=_jsonable)),
                 warnings=np.array(json.dumps(warnings)))
    os.replace(tmp, path)  # atomic: a reader sees the old file or the complete new one


def _load(path: Path) -> tuple[list, str, dict] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            samples = [{"image": x, "label": y.astype(np.int64), "split": str(s), "meta": m}
                       for x, y, s, m in zip(z["images"], z["labels"], z["split"], meta)]
            return samples, str(z["kind"]), json.loads(str(z["warnings"]))
    except Exception:  # a damaged or foreign cache file is rebuilt, never trusted
        return None


def _split(samples: list, name: str) -> Split:
    if not samples:
        return Split(np.zeros((0, 1, 40, 40), np.float32), np.zeros((0, 40, 40), np.int64), [])
    return Split(np.stack([s["image"] for s in samples]).astype(np.float32),
                 np.stack([s["label"] for s in samples]).astype(np.int64),
                 [{**s["meta"], "split": name} for s in samples])


def load_dataset(spec: str = "phantom", data_seed: int = 0, val_frac: float = 0.2, cache: bool = True,
                 **options) -> Dataset:
    """Load a dataset by spec, with train / val / test splits.  [ZX18 §4]

    Args:
        spec: one of `VALID_SPECS` (PATH a folder, or the .npz file for `npz:`).
        data_seed: fixes the synthetic data (independent of the training seed).
        val_frac: fraction of the training masses, taken from the end in split order, that form
            the validation split (rounded half up; 0 = no validation split). Ignored when the
            source names its own `val` rows.
        cache: read/write the built dataset under `cache_dir()`.
        **options (Any): pipeline options `boxes` ("tight": the mass's bounding box, the paper's
            protocol; "drawn": a box drawn around the mass, see `tinyseg.data.boxes`; drawn boxes
            are seeded by `data_seed`), `crop_scale` (1.0), `label_resize` ("bicubic"),
            `clahe_hist_range` ("data"), `gt_dilate_px` (0), and per source: phantom
            `difficulty`, `preset_overrides`; inbreast `split_order`, `n_train`, `mirror_right`,
            `raster`; cbis `mirror_right`; folder `roi`.

    Returns:
        a `Dataset`.

    Raises:
        UserError: unknown spec or option, bad val_frac, drawn boxes on a source without mass outlines.
        FileNotFoundError: missing path.
    """
    source, arg = parse_spec(spec)
    unknown = set(options) - set(PIPELINE_DEFAULTS) - SOURCES[source].options
    if unknown:
        raise UserError(f"unknown option(s) {sorted(unknown)} for {source!r} data; valid: "
                         f"{sorted(set(PIPELINE_DEFAULTS) | SOURCES[source].options)}")
    for name, value in options.items():
        if name in CHOICES:  # string options are checked here, before anything is built or cached
            check_choice(name, value)
    if not 0 <= val_frac < 1:
        raise UserError(f"val_frac must be in [0, 1), got {val_frac}")
    opts = {**PIPELINE_DEFAULTS, **options}
    drawn = opts["boxes"] == "drawn"
    if drawn:
        _check_drawn(source, arg, opts)
    # Everything that changes the arrays is in the key: versions, source, every option, the seed
    # where it matters (synthetic data, drawn boxes) and the source files' names, sizes and times.
    key = json.dumps({"format": CACHE_FORMAT, "version": __version__, "generator": GENERATOR_VERSION,
                      "source": source, "arg": arg, "seed": int(data_seed) if source == "phantom" or drawn else None,
                      "options": opts, "files": _signature(arg) if source != "phantom" else None},
                     sort_keys=True, default=str)
    name = f"{source}:{arg}" if source == "phantom" else f"{source}:{Path(arg).name}"
    path = cache_dir() / "datasets" / f"{source}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    loaded = _load(path) if cache and path.is_file() else None
    warn = WarningCounter()
    if loaded is None:
        # Building can take seconds (synthetic) to minutes (a DICOM folder): say so, on stderr.
        print(f"tinyseg: building the {name} dataset" + (f" (cached under {path.parent} for next time)"
              if cache else ""), file=sys.stderr, flush=True)
        samples, kind = _build(source, arg, int(data_seed), opts, warn)
        warnings = dict(warn.counts)
        if cache:
            _save(path, samples, kind, warnings)
    else:
        samples, kind, warnings = loaded
        for k, n in warnings.items():
            warn.add(k, "(from the dataset cache)", n)
    warn.emit(name)
    train = [s for s in samples if s["split"] == "train"]
    val = [s for s in samples if s["split"] == "val"]
    if not val:
        n_val = int(np.floor(val_frac * len(train) + 0.5))
        if n_val >= len(train) and n_val > 0:
            raise UserError(f"val_frac={val_frac} leaves no training mass (only {len(train)} in train)")
        train, val = train[:len(train) - n_val], train[len(train) - n_val:]
    test = [s for s in samples if s["split"] == "test"]
    return Dataset(spec=spec, name=name, kind=kind, train=_split(train, "train"), val=_split(val, "val"),
                   test=_split(test, "test"), options=opts, warnings=warnings)
