"""Run options: the table of allowed values of every string option, and `TrainConfig`.

`CHOICES` is the one place that lists what a string option may be. `TrainConfig.validate`, the
data loader and the `tinyseg` command's ``choices=`` all read it, so an option is checked where
it enters, before anything is trained or written, and the error names the bad value and the
allowed ones. This module imports nothing else from tinyseg but its errors, so every layer
(the data layer included) can use it.

See: tests/test_config.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import OptionError

CHOICES: dict[str, tuple[str, ...]] = {
    # model and training (TrainConfig)
    "variant": ("fcn", "adv_fcn", "fcn_crf", "adv_fcn_crf", "multi_fcn", "adv_multi_fcn", "multi_fcn_crf",
                "adv_multi_fcn_crf"),            # the eight models of [ZX18 Table 2] (models.VARIANTS)
    "crf_graph": ("dense", "grid4"),             # the paper's dense CRF, or the authors' 4-neighbour code
    "adv_kernel": ("full", "frozen"),            # CRF kernels rebuilt on I + R, or kept (authors' code)
    "fusion": ("logits", "prob"),                # multi-scale fusion domain
    "l2_scope": ("crf", "all"),                  # which weights λ/2‖w‖² penalises
    "prior_init": ("empirical", "zeros"),        # position-prior initialisation
    "device": ("auto", "cpu", "gpu", "cuda"),    # "cuda" is another name for "gpu"
    "dtype": ("float32", "float64"),
    # data pipeline (tinyseg.data.load_dataset options)
    "boxes": ("tight", "drawn"),                 # ROI box: the mass's bounding box (paper), or one drawn around it
    "clahe_hist_range": ("data", "dtype"),       # CLAHE histogram over the ROI's range, or the dtype's
    "label_resize": ("bicubic", "nearest"),      # how a mask is resized to 40×40
    "split_order": ("file_id", "csv"),           # INbreast: order of the train / test split
    "raster": ("outline_fill", "even_odd"),      # polygon rasterisation rule
    "roi": ("box", "whole"),                     # folder data: the ROI around the mask, or the whole image
    # tinyseg segment
    "overlay": ("crop", "full", "none"),         # the overlay PNG: around the box, the whole image, none
}


def check_choice(name: str, value: Any) -> None:
    """Raise an `OptionError` naming `value` and the allowed values unless `value` is in `CHOICES[name]`.

    Args:
        name: the option, a key of `CHOICES` (e.g. ``"crf_graph"``).
        value: the value given.

    Raises:
        OptionError: e.g. ``crf_graph='bogus' is not allowed; use one of: dense, grid4.``
    """
    if value not in CHOICES[name]:
        raise OptionError(f"{name}={value!r} is not allowed; use one of: {', '.join(CHOICES[name])}.")


@dataclass
class TrainConfig:
    """Every hyperparameter of a run (stored in config.json); defaults are the paper's [ZX18 §4]."""

    variant: str = "fcn"           # one of models.VARIANTS
    data: str = "phantom"          # data spec, see tinyseg.data.load_dataset
    epochs: int = 100              # passes over the training set (×4 flips)
    lr: float = 3e-3               # Adam learning rate
    batch_size: int = 29           # ROIs per step
    eps: float | str = "auto"      # adversarial ε: 0.1 inbreast-like data, 0.5 DDSM-like ("auto")
    l2: float = 0.5                # λ of λ/2‖w‖²
    l2_scope: str = "crf"          # "crf" (CRF weights, as the code) or "all"
    crf_graph: str = "dense"       # "dense" (paper) or "grid4" (authors' code)
    n_iter: int = 5                # mean-field iterations in training
    n_iter_eval: int = 10          # ... at validation and test
    adv_kernel: str = "full"       # "full" (kernels rebuilt on I+R) or "frozen" (authors' code)
    fusion: str = "logits"         # multi-scale fusion: "logits" or "prob"
    prior_init: str = "empirical"  # position-prior initialisation: "empirical" or "zeros"
    val_frac: float = 0.2          # last fraction of training masses held out; 0 = fixed budget
    seed: int = 0                  # initialisation and shuffling
    data_seed: int = 0             # synthetic data, and the drawn boxes
    boxes: str = "tight"           # ROI boxes: "tight" (the mass's bounding box, paper) or "drawn"
    device: str = "auto"           # "cpu", "gpu" or "auto"
    dtype: str = "float32"
    init_from: str | None = None   # a run whose FCN weights start this one (e.g. a pretrained FCN)

    def validate(self) -> None:
        """Check every option; `fit` calls this before it reads data or writes anything.

        Raises:
            OptionError: naming the option, the bad value and what is allowed.
        """
        for name in ("variant", "crf_graph", "adv_kernel", "fusion", "l2_scope", "prior_init", "dtype",
                     "boxes"):
            check_choice(name, getattr(self, name))
        check_choice("device", str(self.device).lower())
        if self.eps != "auto":
            try:
                eps = float(self.eps)
            except (TypeError, ValueError):
                raise OptionError(f"eps must be a number > 0 or 'auto', got {self.eps!r}.") from None
            if not eps > 0:
                raise OptionError(f"eps must be > 0 (or 'auto'), got {self.eps}.")
        for name in ("epochs", "batch_size", "n_iter", "n_iter_eval"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not self.lr > 0:
            raise OptionError(f"lr must be > 0, got {self.lr}.")
        if not self.l2 >= 0:
            raise OptionError(f"l2 must be >= 0, got {self.l2}.")
        if not 0 <= self.val_frac < 1:
            raise OptionError(f"val_frac must be in [0, 1), got {self.val_frac}.")
