"""The inference API: `load_run(path)` reads a run directory that `fit` wrote into a `Run`.

A run directory holds ``config.json`` (variant, every hyperparameter, data spec, versions,
`FORMAT_VERSION`), ``model.npz`` (the selected parameters) and ``stats.npz`` (the per-pixel μ, σ
and the prior fitted on the run's training split). `Run.predict` applies exactly the run's own
normalisation, so `tinyseg evaluate` and `tinyseg segment` see the data as training did.

    import tinyseg as ts
    run = ts.load_run("runs/x")
    masks = run.predict(rois)          # (n, 1, 40, 40) enhanced ROIs -> (n, 40, 40) int64
    p = run.predict_proba(rois)        # -> (n, 40, 40) mass probabilities; masks == (p > 0.5)

See: tests/test_train.py, tests/test_segment.py.
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from .backend import as_numpy, is_cupy_array, normalize_device, to_device
from .config import TrainConfig
from .errors import UserError
from .models import SegmentationModel, build_model

FORMAT_VERSION = 1  # of the run directory; bump when config.json or the .npz files change meaning


class Run:
    """A trained run loaded from disk.

    Attributes:
        path: the run directory.
        model: the selected model, in eval mode, on the device `load_run` was given.
        config: the parsed config.json (``config["train"]`` holds the `TrainConfig` fields).
        stats: ``mu``, ``sigma`` (1, 40, 40) and ``prior`` (40, 40) from stats.npz.
    """

    def __init__(self, path: Path, model: SegmentationModel, config: dict[str, Any],
                 stats: dict[str, np.ndarray]) -> None:
        self.path, self.model, self.config, self.stats = path, model, config, stats

    @property
    def variant(self) -> str:
        """The Table-2 variant the run trained, e.g. ``"adv_fcn_crf"``."""
        return self.config["variant"]

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """Apply the run's stored per-pixel μ, σ (fitted on its training split)."""
        from .data import normalize

        return normalize(images, self.stats["mu"], self.stats["sigma"])

    def _inputs(self, images: Any, caller: str) -> Any:
        """Checked, normalised ROIs in the run's dtype, on the model's device."""
        images = np.asarray(as_numpy(images))
        if images.ndim != 4 or images.shape[1:] != self.stats["mu"].shape:
            raise UserError(f"{caller} expects ROIs of shape (n, {', '.join(map(str, self.stats['mu'].shape))}), "
                            f"got {images.shape}.")
        if not np.all(np.isfinite(images)):
            raise UserError(f"{caller}: the images contain NaN or inf.")
        dtype = np.dtype(self.config["train"]["dtype"])
        device = "gpu" if is_cupy_array(self.model.parameters()[0].data) else "cpu"
        return to_device(self.normalize(images).astype(dtype), device)

    def predict(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """Hard masks (n, 40, 40) int64 for enhanced, un-normalised ROIs (n, 1, 40, 40)."""
        return as_numpy(self.model.predict(self._inputs(images, "predict"), batch_size))

    def predict_proba(self, images: Any, batch_size: int = 256) -> np.ndarray:
        r"""Mass probabilities (n, 40, 40) for enhanced, un-normalised ROIs (n, 1, 40, 40).

        The softmax of the model's logits, class 1: $p = \mathrm{softmax}(z)_1$, the FCN's output
        or, for CRF variants, the last mean-field marginal $Q_T$ [ZX18 Eq. 5]. `predict` is
        $p > 1/2$ (argmax; a tie goes to the background in both).

        Returns:
            (n, 40, 40) float array in [0, 1], in the run's dtype.

        See: tests/test_segment.py.
        """
        from .autodiff import Tensor, no_grad
        from .functions import softmax

        x = self._inputs(images, "predict_proba")
        self.model.eval()
        with no_grad():
            out = [softmax(self.model(Tensor(x[i:i + batch_size])), axis=1).data[:, 1]
                   for i in range(0, len(x), batch_size)]  # each (b, 40, 40)
        if not out:
            return np.zeros((0, *x.shape[2:]), x.dtype)
        return np.concatenate([as_numpy(o) for o in out])


def load_run(path: str | Path, device: str = "cpu") -> Run:
    """Load a run directory written by `fit` (model rebuilt from config.json, parameters from model.npz).

    Args:
        path: the run directory.
        device: ``"cpu"``, ``"gpu"`` or ``"auto"``: where the model's parameters go.

    Returns:
        The `Run`, its model in eval mode.

    Raises:
        FileNotFoundError: a file of the run is missing (not a finished run).
        UserError: the run was written by an incompatible version, or its files disagree.
    """
    path = Path(path)
    for name in ("config.json", "model.npz", "stats.npz"):
        if not (path / name).exists():
            raise FileNotFoundError(f"{path / name} not found: is {path} a finished tinyseg run "
                                    "(written by `tinyseg train`)?")
    config = json.loads((path / "config.json").read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} was written by an incompatible tinyseg (format {config.get('format_version')}).")
    t = config["train"]
    known = {f.name for f in fields(TrainConfig)}
    t = {k: v for k, v in t.items() if k in known}
    with np.load(path / "stats.npz") as z:
        stats = {k: z[k] for k in z.files}
    model = build_model(t["variant"], None, seed=t["seed"], dtype=np.dtype(t["dtype"]), crf_graph=t["crf_graph"],
                        n_iter=t["n_iter"], n_iter_eval=t["n_iter_eval"], fusion=t["fusion"])
    with np.load(path / "model.npz") as z:
        try:
            model.load_state_dict({k: z[k] for k in z.files})
        except ValueError as e:
            raise UserError(f"{path / 'model.npz'} does not match variant {t['variant']!r} in config.json: {e}") from e
    model.to(normalize_device(device)).eval()
    return Run(path, model, config, stats)
