r"""**What adversarial training buys** (`run_adversarial_study`, lesson 04).

Two questions, on `fcn_crf` against `adv_fcn_crf`, both trained exactly as Table 2 trains them
(validation selection within the epoch budget):

(a) *Robustness at a matched budget.* Adversarial models are trained at each ε of a grid (the
paper's 0.1, and 0.5, 1, 2), and every model — the plain one too — is attacked at every ε of the
grid with its own image gradient, $R = \varepsilon\, g/\lVert g\rVert$, $g = \nabla_I L$ per
image (Eq. 7, as lesson 04 attacks). Reported: pooled Dice against the attack's ε, one curve
per training ε and the plain model's, and each adversarial model against the plain one at each
attack ε (Δ with a bootstrap CI, Wilcoxon on per-image Dice).

(b) *The small-data regime the paper argues from.* Clean test Dice of the plain and the
adversarial model at the paper's ε (0.1 on INbreast-like data) trained on the first 8, 16, 32 and
all training masses (each ×4 flips; validation unchanged).

See: lessons/04_adversarial.py, docs/results.md ("What each component buys"), tests/studies/test_studies.py.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import functions as F
from ..adversarial import adversarial_perturbation
from ..autodiff import Tensor
from ..backend import as_numpy
from ..config import TrainConfig, check_choice
from ..errors import OptionError
from ..experiments import _load_preds, fast_subset
from ..runs import load_run
from ..utils import atomic_write_text
from ._common import delta_ci, fmt_p, mean_sd, paired_comparison, score_condition, train_runs

TRAIN_EPS = (0.1, 0.5, 1.0, 2.0)
N_TRAIN = (8, 16, 32, None)  # None: every training mass


def predictions_under_attack(run: Any, images: np.ndarray, labels: np.ndarray, eps_list: Sequence[float],
                             batch: int = 29) -> list[np.ndarray]:
    """Test labels of `run` on I + R for each ε, R = ε g/‖g‖ per image, g = ∇_I L of its own loss
    (in eval mode: the test-time CRF iterations)."""
    model = run.model.eval()
    x = run.normalize(images).astype(model.parameters()[0].data.dtype)
    g = np.zeros_like(x)
    for i in range(0, len(x), batch):
        image = Tensor(x[i:i + batch], requires_grad=True)
        F.cross_entropy(model(image), labels[i:i + batch]).backward()
        g[i:i + batch] = as_numpy(image.grad)
    model.zero_grad()
    return [np.asarray(model.predict(x + as_numpy(adversarial_perturbation(g, eps)))) for eps in eps_list]


def _name(eps: float | None, n_train: int | None) -> str:
    return ("fcn_crf" if eps is None else f"adv_fcn_crf_eps{eps:g}") + ("" if n_train is None else f"_n{n_train}")


def run_adversarial_study(data: str = "phantom", seeds: int = 3, epochs: int = 30,
                          train_eps: Sequence[float] = TRAIN_EPS, n_train: Sequence[int | None] = N_TRAIN,
                          paper_eps: float = 0.1, out: str | Path = "results/adversarial_study", fast: bool = False,
                          data_seed: int = 0, boxes: str = "tight", jobs: int = 1, threads_per_job: int | None = None,
                          quiet: bool = False) -> dict[str, Any]:
    """Robustness against the training ε, and clean Dice against the amount of training data;
    writes ``adversarial_study.json`` and ``adversarial_study.md``.

    Args:
        data: data spec.
        seeds: seeds 0..K−1 per model.
        epochs: epoch budget (validation selection within it, as Table 2).
        train_eps: the ε grid: adversarial models are trained at each, every model attacked at each.
        n_train: training-set sizes in masses for (b) (None: all of them).
        paper_eps: the ε of (b).
        out: output folder (``runs/`` inside; an interrupted study resumes).
        fast: 16 training masses, 2 epochs, 2 CRF iterations (a smoke test).
        data_seed: data seed.
        boxes: box protocol.
        jobs: runs trained at once, each in its own process.
        threads_per_job: BLAS threads per worker (default cores // jobs).
        quiet: no progress output.
    """
    from ..data import load_dataset

    check_choice("boxes", boxes)
    if seeds < 1 or epochs < 1 or min(train_eps) <= 0 or paper_eps <= 0:
        raise OptionError(f"--seeds and --epochs must be at least 1 and every ε positive, got {seeds}, {epochs}, "
                          f"{list(train_eps)} and {paper_eps}.")
    train_eps = sorted(set(float(e) for e in train_eps) | {float(paper_eps)})
    out = Path(out)
    full = load_dataset(data, data_seed=data_seed, boxes=boxes)
    if fast:
        full, epochs = fast_subset(full), min(epochs, 2)
    base = replace(TrainConfig(), data=data, data_seed=data_seed, boxes=boxes, epochs=epochs,
                   **({"n_iter": 2, "n_iter_eval": 3} if fast else {}))

    def config(eps: float | None, s: int) -> TrainConfig:
        return replace(base, seed=s, variant="fcn_crf" if eps is None else "adv_fcn_crf",
                       eps="auto" if eps is None else eps)

    # (a) every training ε, on all the data; (b) the plain and the paper's-ε model on fewer masses.
    runs = [(config(e, s), out / "runs" / f"{_name(e, None)}_s{s}") for e in [None, *train_eps] for s in range(seeds)]
    train_runs(runs, full, jobs, threads_per_job, quiet, "all masses")
    sizes = [n for n in n_train if n is not None and n < len(full.train)]
    for n in sizes:
        small = fast_subset(full, n_train=n, n_val=len(full.val))
        train_runs([(config(e, s), out / "runs" / f"{_name(e, n)}_s{s}") for e in (None, paper_eps)
                    for s in range(seeds)], small, jobs, threads_per_job, quiet, f"{n} masses")

    images, target = full.test.images, np.asarray(full.test.labels)
    attacked: dict[str, list[list[np.ndarray]]] = {}  # model -> seed -> one prediction per attack ε
    for e in [None, *train_eps]:
        attacked[_name(e, None)] = [predictions_under_attack(load_run(out / "runs" / f"{_name(e, None)}_s{s}"),
                                                             images, target, train_eps) for s in range(seeds)]
    robustness: dict[str, Any] = {}
    plain = attacked["fcn_crf"]
    for model, per_seed in attacked.items():
        clean = [_load_preds(out / "runs" / f"{model}_s{s}")[0] for s in range(seeds)]
        row = {"clean": score_condition(clean, target), "attacked": {}}
        for k, eps in enumerate(train_eps):
            preds = [p[k] for p in per_seed]
            row["attacked"][f"{eps:g}"] = score_condition(preds, target)
            if model != "fcn_crf":
                row["attacked"][f"{eps:g}"]["vs_plain"] = paired_comparison([p[k] for p in plain], preds, target)
        robustness[model] = row
    small_data: dict[str, Any] = {}
    for n in [*sizes, None]:
        a = [_load_preds(out / "runs" / f"{_name(None, n)}_s{s}")[0] for s in range(seeds)]
        b = [_load_preds(out / "runs" / f"{_name(paper_eps, n)}_s{s}")[0] for s in range(seeds)]
        small_data["all" if n is None else str(n)] = {
            "n_train_masses": len(full.train) if n is None else n, "fcn_crf": score_condition(a, target),
            "adv_fcn_crf": score_condition(b, target), "adv_vs_plain": paired_comparison(a, b, target)}
    study = {"data": data, "n_test": int(len(target)), "train_eps": train_eps, "paper_eps": paper_eps,
             "robustness": robustness, "small_data": small_data,
             "command": {"data": data, "seeds": seeds, "epochs": epochs, "train_eps": train_eps,
                         "n_train": [n for n in n_train], "paper_eps": paper_eps, "fast": fast,
                         "data_seed": data_seed, "boxes": boxes}}
    atomic_write_text(out / "adversarial_study.json", json.dumps(study, indent=2))
    atomic_write_text(out / "adversarial_study.md", render_adversarial_study(study))
    return study


def summarize_adversarial(study: dict[str, Any]) -> str:
    """One line: each adversarial model minus the plain one under the strongest attack, and the
    small-data differences at the paper's ε (pooled-Dice points, Wilcoxon p)."""
    top = f"{max(study['train_eps']):g}"
    rob = [f"trained at ε = {m.split('eps')[1]}: "
           f"{100 * r['attacked'][top]['vs_plain']['dice_pooled_difference']:+.2f} "
           f"(p {fmt_p(r['attacked'][top]['vs_plain']['paired_p_wilcoxon'])})"
           for m, r in study["robustness"].items() if m != "fcn_crf"]
    small = [f"{r['n_train_masses']} masses {100 * r['adv_vs_plain']['dice_pooled_difference']:+.2f} "
             f"(p {fmt_p(r['adv_vs_plain']['paired_p_wilcoxon'])})" for r in study["small_data"].values()]
    return (f"{study['command']['seeds']} seed(s); under attack at ε = {top}, minus the plain FCN-CRF: "
            + ", ".join(rob) + f"; clean, adversarial (ε = {study['paper_eps']:g}) minus plain: " + ", ".join(small))


def render_adversarial_study(study: dict[str, Any]) -> str:
    """The study as Markdown: Dice under attack per model, and the small-data comparison."""
    c, eps = study["command"], study["train_eps"]
    lines = [f"# What adversarial training buys, on `{study['data']}`", "",
             f"{c['seeds']} seed(s) per model, {c['epochs']} epochs (validation selection, as Table 2), "
             f"{study['n_test']} test ROIs, {c['boxes']} boxes.", "",
             "**(a) Pooled Dice (%) under attack**, each model with its own gradient:", "",
             "| model | clean | " + " | ".join(f"attack ε = {e:g}" for e in eps) + " |",
             "|---|---|" + "---|" * len(eps)]
    for model, row in study["robustness"].items():
        cells = [mean_sd(row["clean"])]
        for e in eps:
            a = row["attacked"][f"{e:g}"]
            txt = f"{100 * a['dice_pooled_mean']:.2f}"
            if "vs_plain" in a:
                v = a["vs_plain"]
                txt += f" (Δ {100 * v['dice_pooled_difference']:+.2f}, p {fmt_p(v['paired_p_wilcoxon'])})"
            cells.append(txt)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", "Δ: against fcn_crf under the same attack ε, in pooled-Dice points; p: Wilcoxon on per-image "
              "Dice averaged over seeds.", "",
              f"**(b) Clean pooled Dice (%) with fewer training masses**, ε = {study['paper_eps']:g}:", "",
              "| training masses | fcn_crf | adv_fcn_crf | Δ [95 % CI] | p (Wilcoxon) |", "|---|---|---|---|---|"]
    for row in study["small_data"].values():
        lines.append(f"| {row['n_train_masses']} | {mean_sd(row['fcn_crf'])} | {mean_sd(row['adv_fcn_crf'])} | "
                     f"{delta_ci(row['adv_vs_plain'])} | {fmt_p(row['adv_vs_plain']['paired_p_wilcoxon'])} |")
    return "\n".join(lines + [""])
