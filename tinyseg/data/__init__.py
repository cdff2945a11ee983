"""The data layer: synthetic generator, the paper's preprocessing, real-data loaders, `load_dataset`.

    from tinyseg.data import load_dataset
    ds = load_dataset("phantom")            # 116 synthetic INbreast-like masses: 46 / 12 / 58
    ds.train.images.shape                   # (46, 1, 40, 40) float32, enhanced, not normalised

Plain NumPy/SciPy; pydicom is imported only by the DICOM readers and writers.
[ZX18 §4]

See: docs/data.md, lessons/02_fcn.py.
"""
from __future__ import annotations

from .baselines import otsu_baseline, otsu_threshold
from .canvases import mammogram_samples
from .datasets import VALID_SPECS, Dataset, Split, cache_dir, load_dataset
from .errors import DataFormatError, DataWarning, WarningCounter
from .mammogram import SyntheticMammogram, generate_mammograms
from .phantom import PRESETS, PhantomROI, Preset, generate_rois, get_preset
from .preprocess import (empirical_prior, enhance, extract_roi, fit_normalization, flip4, mask_box, mass_to_roi,
                         normalize,
                         paste_mask, prepare_roi, prior_baseline_predict, read_image, resize_roi)
from .raster import rasterize_polygon

__all__ = ["PRESETS", "VALID_SPECS", "DataFormatError", "DataWarning", "Dataset", "PhantomROI", "Preset", "Split",
           "SyntheticMammogram", "WarningCounter", "cache_dir", "empirical_prior", "enhance", "extract_roi",
           "fit_normalization", "flip4", "generate_mammograms", "generate_rois", "get_preset", "load_dataset",
           "mammogram_samples", "mask_box", "mass_to_roi", "normalize", "otsu_baseline", "otsu_threshold", "paste_mask",
           "prepare_roi", "prior_baseline_predict", "rasterize_polygon", "read_image", "resize_roi"]
