"""Training, checkpoints and runs [ZX18 §4].

`fit(config, out)` trains a Table-2 variant: the training masses (×4 flips) are shuffled with a
seeded generator every epoch and cut into batches of 29; normalisation statistics and the
empirical prior come from the training split only and are stored in the run; the epoch kept is
the one with the best pooled validation Dice (evaluated with the CRF's test-time iterations),
or the last one with ``val_frac=0``. The test split is used once, at the end, for metrics.json.

A run directory holds ``config.json``, ``model.npz`` (the selected parameters), ``stats.npz``
(μ, σ, prior), ``history.csv``, ``metrics.json``, ``test_pred.npz`` and ``checkpoint.npz``
(everything `resume` needs: parameters, Adam moments and step, RNG state, epoch, best
parameters and score). Every file is written atomically, so an interrupted run never leaves a
half-written file behind, and a resumed run equals an uninterrupted one. `tinyseg.runs.load_run`
reads a finished run back; `TrainConfig` lives in `tinyseg.config`, which checks it before
anything is read or written.

See: lessons/02_fcn.py, tests/test_train.py.
"""
from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._version import __version__
from .adversarial import loss_and_backward
from .backend import as_numpy, get_array_module, normalize_device, to_device
from .config import TrainConfig
from .errors import OptionError, UserError
from .models import SegmentationModel, build_model
from .optim import Adam
from .progress import Progress
from .runs import FORMAT_VERSION, Run, load_run
from .utils import atomic_path, atomic_write_text


def resolve_eps(config: TrainConfig, kind: str) -> float:
    """ε of Eq. 7: the configured value, or 0.1 for INbreast-like and 0.5 for DDSM-like data."""
    if config.eps == "auto":
        return 0.5 if kind == "ddsm" else 0.1
    return float(config.eps)


@dataclass
class Prepared:
    """Normalised, augmented arrays and the statistics fitted on the training split."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    prior: np.ndarray
    kind: str


def prepare_data(dataset: Any, dtype: Any = np.float32) -> Prepared:
    """Fit μ, σ and the prior on the training split, normalise every split, flip the training set ×4."""
    from .data import empirical_prior, fit_normalization, flip4, normalize

    tr = dataset.train
    if len(tr) == 0:
        raise UserError("the training split is empty: the dataset has no training masses.")
    for name, split in (("train", tr), ("val", dataset.val)):
        if len(split) and not np.all(np.isfinite(split.images)):
            raise UserError(f"the {name} images contain NaN or inf: check the data source (a corrupt DICOM?).")
        if len(split) and not np.isin(split.labels, (0, 1)).all():
            raise UserError(f"the {name} labels must be 0 or 1, found {np.unique(split.labels)[:5]}.")
    fx, fy = flip4(tr.images, tr.labels)
    mu, sigma = fit_normalization(fx)
    prior = empirical_prior(tr.labels, symmetric=True)
    val = dataset.val
    vx = normalize(val.images, mu, sigma).astype(dtype) if len(val) else np.zeros((0, 1, *tr.images.shape[2:]), dtype)
    vy = val.labels if len(val) else np.zeros((0, *tr.images.shape[2:]), np.int64)
    return Prepared(normalize(fx, mu, sigma).astype(dtype), fy.astype(np.int64), vx, vy, mu, sigma, prior,
                    getattr(dataset, "kind", "inbreast"))


def _pooled_dice(pred: np.ndarray, target: np.ndarray) -> float:
    from .metrics import dice_pooled

    return float(dice_pooled(pred, target))


class Trainer:
    """The mutable state of a run: model, optimizer, RNG, epoch, best score, history."""

    def __init__(self, config: TrainConfig, data: Prepared, device: str) -> None:
        self.config, self.data, self.device = config, data, device
        dtype = np.dtype(config.dtype)
        self.model = build_model(config.variant, data.prior if config.prior_init == "empirical" else None,
                                 seed=config.seed, dtype=dtype, crf_graph=config.crf_graph, n_iter=config.n_iter,
                                 n_iter_eval=config.n_iter_eval, fusion=config.fusion).to(device)
        if config.init_from:
            _init_fcn_from(self.model, Path(config.init_from))
        self.opt = Adam(self.model.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(config.seed)
        self.eps = resolve_eps(config, data.kind)
        self.epoch, self.best_score, self.best_epoch = 0, -1.0, 0
        self.best_state: dict[str, np.ndarray] = self.model.state_dict()
        self.history: list[dict[str, float]] = []
        self.on_step: Callable[[int, int], None] | None = None  # called after step k of n: progress display
        self._x = to_device(data.train_x, device)
        self._y = to_device(data.train_y, device)
        self._vx = to_device(data.val_x, device)

    # --8<-- [start:run_epoch]
    def run_epoch(self) -> dict[str, float]:
        """One pass over the shuffled training set; returns the history row."""
        c, n = self.config, len(self._x)
        t0 = time.perf_counter()
        self.model.train()
        order = to_device(self.rng.permutation(n), self.device)  # one copy per epoch
        losses, ratios = [], []
        for i in range(0, n, c.batch_size):
            idx = order[i:i + c.batch_size]
            self.model.zero_grad()
            # forward, loss (Eq. 1, plus Eq. 8's adversarial term when asked), backward
            res = loss_and_backward(
                self.model, self._x[idx], self._y[idx],
                adversarial=self.model.adversarial, eps=self.eps,
                lam=c.l2, l2_scope=c.l2_scope, adv_kernel=c.adv_kernel,
                sync=False)  # the numbers stay on the device until the epoch ends
            self.opt.step()
            losses.append(res.loss)
            ratios.append(res.r_ratio)
            if self.on_step is not None:  # the progress bar
                self.on_step(i // c.batch_size + 1, -(-n // c.batch_size))
        self.epoch += 1
        return self._finish_epoch(losses, ratios, time.perf_counter() - t0)
    # --8<-- [end:run_epoch]

    def _finish_epoch(self, losses: list[Any], ratios: list[Any], seconds: float) -> dict[str, float]:
        """The epoch's history row; validation Dice, and the best epoch's parameters kept."""
        t0 = time.perf_counter()
        losses = as_numpy(get_array_module(self._x).stack(losses)).astype(float)
        ratios = as_numpy(get_array_module(self._x).stack(ratios)).astype(float)
        row = {"epoch": self.epoch, "train_loss": float(np.mean(losses)), "r_ratio": float(np.mean(ratios)),
               "val_dice": float("nan"), "seconds": 0.0}
        if not np.all(np.isfinite(losses)):
            raise UserError(f"training diverged at epoch {self.epoch} (loss {row['train_loss']}); "
                            "try a smaller --lr.")
        if len(self._vx):
            row["val_dice"] = _pooled_dice(as_numpy(self.model.predict(self._vx)), self.data.val_y)
            if row["val_dice"] > self.best_score:
                self.best_score, self.best_epoch, self.best_state = row["val_dice"], self.epoch, self.model.state_dict()
        row["seconds"] = seconds + time.perf_counter() - t0
        self.history.append(row)
        return row

    def selected_state(self) -> dict[str, np.ndarray]:
        """The parameters a run keeps: best validation epoch, or the last epoch without validation."""
        return self.best_state if len(self._vx) else self.model.state_dict()

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, path: Path) -> None:
        arrays = {f"param/{k}": v for k, v in self.model.state_dict().items()}
        arrays.update({f"best/{k}": v for k, v in self.best_state.items()})
        opt = self.opt.state_dict()
        arrays.update({f"adam_m/{i}": m for i, m in enumerate(opt["m"])})
        arrays.update({f"adam_v/{i}": v for i, v in enumerate(opt["v"])})
        meta = {"epoch": self.epoch, "best_score": self.best_score, "best_epoch": self.best_epoch, "adam_t": opt["t"],
                "rng": self.rng.bit_generator.state, "history": self.history}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        _save_npz(path, arrays)

    def load_checkpoint(self, path: Path) -> None:
        with np.load(path) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            self.model.load_state_dict({k[6:]: z[k] for k in z.files if k.startswith("param/")})
            self.best_state = {k[5:]: z[k] for k in z.files if k.startswith("best/")}
            n = len(self.opt.params)
            self.opt.load_state_dict({"t": meta["adam_t"], "m": [z[f"adam_m/{i}"] for i in range(n)],
                                      "v": [z[f"adam_v/{i}"] for i in range(n)]})
        self.epoch, self.best_score, self.best_epoch = meta["epoch"], meta["best_score"], meta["best_epoch"]
        self.rng.bit_generator.state = meta["rng"]
        self.history = meta["history"]


def _init_fcn_from(model: SegmentationModel, run_dir: Path) -> None:
    """Copy the FCN part of another run's parameters (e.g. a pretrained FCN into an FCN-CRF)."""
    with np.load(run_dir / "model.npz") as z:
        state = {k[4:]: z[k] for k in z.files if k.startswith("fcn.")}
    model.fcn.load_state_dict(state)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["epoch", "train_loss", "val_dice", "r_ratio", "seconds"], lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def fit(config: TrainConfig, out: str | Path, resume: bool = False, quiet: bool = False, dataset: Any = None,
        evaluate_test: bool = True, desc: str | None = None) -> Run:
    """Train `config.variant` and write the run directory `out`; returns the loaded `Run`.

    Args:
        config: hyperparameters (see `TrainConfig`).
        out: run directory (created). An existing finished or partial run is refused unless
            `resume` is set.
        resume: continue from ``out/checkpoint.npz`` (its config must match, except `epochs`,
            which may grow).
        quiet: no progress output. Otherwise progress goes to stderr: a bar per run on a
            terminal, one line per run when stderr is a file or a pipe.
        dataset: an already loaded dataset (else ``load_dataset(config.data, config.data_seed,
            boxes=config.boxes)``); it must have been loaded with ``config.boxes``.
        evaluate_test: write metrics.json and test predictions at the end.
        desc: the run's name in its progress output (default: the variant).
    """
    from .data import load_dataset

    config.validate()
    out = Path(out)
    device = normalize_device(config.device)
    if (out / "config.json").exists() and not resume:
        raise FileExistsError(f"{out} already holds a run: pass --resume to continue it, or choose a new --out.")
    progress = Progress(desc or config.variant, config.epochs, quiet)
    try:
        progress.status("preparing")
        if dataset is None:
            dataset = load_dataset(config.data, data_seed=config.data_seed, val_frac=config.val_frac,
                                   boxes=config.boxes)
        elif getattr(dataset, "options", {}).get("boxes", "tight") != config.boxes:
            raise OptionError(f"the dataset was loaded with boxes={dataset.options.get('boxes', 'tight')!r} but the "
                              f"run is configured with boxes={config.boxes!r}; load it with boxes={config.boxes!r}.")
        data = prepare_data(dataset, np.dtype(config.dtype))
        trainer = Trainer(config, data, device)
        if resume and (out / "checkpoint.npz").exists():
            saved = json.loads((out / "config.json").read_text())["train"]
            mine = {k: v for k, v in asdict(config).items() if k not in ("epochs", "device")}
            old = {**asdict(TrainConfig()), **saved}  # an option the saved run predates had its default then
            diff = {k: (old[k], v) for k, v in mine.items() if old[k] != v}
            if diff:
                raise OptionError(f"--resume with different hyperparameters than the saved run: {diff}.")
            trainer.load_checkpoint(out / "checkpoint.npz")
        out.mkdir(parents=True, exist_ok=True)
        run_config = {"format_version": FORMAT_VERSION, "tinyseg_version": __version__, "numpy_version": np.__version__,
                      "variant": config.variant, "eps_resolved": trainer.eps, "data_kind": data.kind,
                      "train": asdict(config)}
        atomic_write_text(out / "config.json", json.dumps(run_config, indent=2))
        _save_npz(out / "stats.npz", {"mu": data.mu, "sigma": data.sigma, "prior": data.prior})

        progress.start(trainer.epoch)
        trainer.on_step = progress.step
        # --8<-- [start:fit_loop]
        while trainer.epoch < config.epochs:
            row = trainer.run_epoch()        # the training loop, plus validation Dice
            trainer.save_checkpoint(out / "checkpoint.npz")   # for --resume
            atomic_write_text(out / "history.csv", _history_csv(trainer.history))
            progress.epoch(row)
        # keep the epoch with the best validation Dice (the last one without validation)
        _save_npz(out / "model.npz", trainer.selected_state())
        # --8<-- [end:fit_loop]
        atomic_write_text(out / "history.csv", _history_csv(trainer.history))
        run = load_run(out, device=device)
        if evaluate_test:
            from .evaluation import evaluate_run

            progress.status("testing")
            evaluate_run(run, dataset, out, best_epoch=trainer.best_epoch if len(data.val_x) else trainer.epoch)
    except BaseException:
        progress.close(finished=False)  # the error speaks for the run
        raise
    progress.close()
    return run

