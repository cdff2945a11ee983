"""Copy finished studies into the docs, draw their figures and write the sentences pages quote.

    python tools/make_studies.py --crf runs/studies/crf --adversarial runs/studies/adversarial \\
        --multiscale runs/studies/multiscale     # copy (any subset), then write everything below
    python tools/make_studies.py                 # rewrite figures and quotes from docs/results/studies
    python tools/make_studies.py --check         # exit 1 if a quote or table is out of date

For each study ``NAME`` (crf, adversarial, multiscale) that has been run with
``tinyseg study NAME --out DIR``, this keeps ``docs/results/studies/NAME/NAME_study.json`` and
``.md`` (the table, rendered by `tinyseg.studies` from the JSON), draws ``NAME_study.png`` and
writes the generated sentences of ``docs/outputs/study_quotes.md``, one snippet section per
claim (``--8<-- "docs/outputs/study_quotes.md:crf_drawn"``). No number is typed:
``tests/docs/test_results_quotes.py`` fails when a file is stale.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a clone without installing

from tinyseg import studies  # noqa: E402

STUDIES = ROOT / "docs/results/studies"
QUOTES = ROOT / "docs/outputs/study_quotes.md"
RENDER = {"crf": studies.render_crf_study, "adversarial": studies.render_adversarial_study,
          "multiscale": studies.render_multiscale_study}
NB = "\u00a0"


def load(name: str) -> dict[str, Any] | None:
    path = STUDIES / name / f"{name}_study.json"
    return json.loads(path.read_text()) if path.exists() else None


def _p(p: float) -> str:
    return "n/a" if p != p else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def _delta(v: dict[str, Any]) -> str:
    lo, hi = v["dice_pooled_difference_ci95"]
    return (f"{100 * v['dice_pooled_difference']:+.2f}{NB}points (95{NB}% CI {100 * lo:+.2f} to {100 * hi:+.2f}, "
            f"Wilcoxon p{NB}={NB}{_p(v['paired_p_wilcoxon'])})")


def crf_quotes(s: dict[str, Any]) -> dict[str, str]:
    out = {}
    for protocol, res in s["protocols"].items():
        budgets = list(res["budgets"])
        first, last = res["budgets"][budgets[0]], res["budgets"][budgets[-1]]
        out[f"crf_{protocol}"] = (
            f"Under {protocol} boxes, the CRF with its default weights applied to the unaries of an FCN trained "
            f"for {budgets[0]} epoch{'s' * (budgets[0] != '1')} (pooled Dice {100 * first['fcn']['dice_pooled_mean']:.2f}{NB}%) changes pooled "
            f"Dice by {_delta(first['crf_default']['vs_fcn'])} and trimap accuracy at w{NB}={NB}1 by "
            f"{100 * first['crf_default']['vs_fcn']['trimap_w1_difference']:+.2f}{NB}points; on an FCN trained for "
            f"{budgets[-1]} epochs ({100 * last['fcn']['dice_pooled_mean']:.2f}{NB}%) by "
            f"{_delta(last['crf_default']['vs_fcn'])}, trimap w{NB}={NB}1 "
            f"{100 * last['crf_default']['vs_fcn']['trimap_w1_difference']:+.2f}{NB}points; with the weights an FCN-CRF "
            f"learned, {_delta(last['crf_learned']['vs_fcn'])} ({s['command']['seeds']} seeds).")
    return out


def adversarial_quotes(s: dict[str, Any]) -> dict[str, str]:
    eps = s["train_eps"]
    top = f"{max(eps):g}"
    rob = s["robustness"]
    plain = rob["fcn_crf"]
    best = max((m for m in rob if m != "fcn_crf"), key=lambda m: rob[m]["attacked"][top]["dice_pooled_mean"])
    paper = f"adv_fcn_crf_eps{s['paper_eps']:g}"
    small = s["small_data"]
    first = next(iter(small))
    return {
        "adversarial_robustness": (
            f"Attacked with its own gradient at ε{NB}={NB}{top}, the plain FCN-CRF keeps "
            f"{100 * plain['attacked'][top]['dice_pooled_mean']:.2f}{NB}% pooled Dice (clean "
            f"{100 * plain['clean']['dice_pooled_mean']:.2f}{NB}%); the model trained at the paper's ε{NB}={NB}"
            f"{s['paper_eps']:g} differs from it by {_delta(rob[paper]['attacked'][top]['vs_plain'])}, and the most "
            f"robust one, {best}, by {_delta(rob[best]['attacked'][top]['vs_plain'])} "
            f"({s['command']['seeds']} seeds)."),
        "adversarial_small_data": (
            f"Trained on {small[first]['n_train_masses']} masses, the adversarial FCN-CRF "
            f"(ε{NB}={NB}{s['paper_eps']:g}) differs from the plain one in clean pooled Dice by "
            f"{_delta(small[first]['adv_vs_plain'])}; on all {small['all']['n_train_masses']} masses by "
            f"{_delta(small['all']['adv_vs_plain'])}."),
    }


def multiscale_quotes(s: dict[str, Any]) -> dict[str, str]:
    g = s["groups"]
    parts = "; ".join(f"{name} masses ({g[name]['n']} ROIs) {_delta(g[name]['multi_vs_fcn'])}"
                      for name in ("small", "middle", "large"))
    return {"multiscale_thirds": (
        f"Under {s['boxes']} boxes the multi-scale FCN differs from one FCN by {_delta(g['all']['multi_vs_fcn'])} "
        f"over all {g['all']['n']} test ROIs; per third of mass size: {parts} ({s['command']['seeds']} seeds).")}


def quotes_text() -> str:
    sections = []
    for name, fn in (("crf", crf_quotes), ("adversarial", adversarial_quotes), ("multiscale", multiscale_quotes)):
        s = load(name)
        if s is None:
            continue
        for key, text in fn(s).items():
            sections.append(f"<!-- --8<-- [start:{key}] -->\n{text}\n<!-- --8<-- [end:{key}] -->\n")
    return ("<!-- Generated by tools/make_studies.py from docs/results/studies/*/ -- do not edit. -->\n\n"
            + "\n".join(sections))


def draw(name: str, s: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if name == "crf":
        fig, axes = plt.subplots(1, len(s["protocols"]), figsize=(4.2 * len(s["protocols"]), 3.2), squeeze=False)
        for ax, (protocol, res) in zip(axes[0], s["protocols"].items()):
            e = [int(k) for k in res["budgets"]]
            for cond, label in (("fcn", "FCN"), ("crf_default", "+ CRF, default w"), ("crf_learned", "+ CRF, learned w")):
                m = [100 * res["budgets"][str(k)][cond]["dice_pooled_mean"] for k in e]
                sd = [100 * res["budgets"][str(k)][cond]["dice_pooled_std"] for k in e]
                ax.errorbar(e, m, yerr=sd, marker="o", ms=4, capsize=2, label=label)
            ax.set_xscale("log")
            ax.set_xticks(e, [str(k) for k in e])
            ax.set(title=f"{protocol} boxes", xlabel="FCN training epochs", ylabel="test pooled Dice (%)")
        axes[0][0].legend(fontsize=8)
    elif name == "adversarial":
        fig, (a, b) = plt.subplots(1, 2, figsize=(8.4, 3.2))
        eps = s["train_eps"]
        for model, row in s["robustness"].items():
            y = [100 * row["clean"]["dice_pooled_mean"]] + [100 * row["attacked"][f"{e:g}"]["dice_pooled_mean"]
                                                            for e in eps]
            a.plot([0.0, *eps], y, marker="o", ms=4, label="plain" if model == "fcn_crf" else
                   "trained at ε = " + model.split("eps")[1])
        a.set(title="(a) attacked with its own gradient", xlabel="attack ε", ylabel="test pooled Dice (%)")
        a.legend(fontsize=8)
        rows = list(s["small_data"].values())
        n = [r["n_train_masses"] for r in rows]
        for key, label in (("fcn_crf", "FCN-CRF"), ("adv_fcn_crf", f"adversarial, ε = {s['paper_eps']:g}")):
            b.errorbar(n, [100 * r[key]["dice_pooled_mean"] for r in rows],
                       yerr=[100 * r[key]["dice_pooled_std"] for r in rows], marker="o", ms=4, capsize=2, label=label)
        b.set_xscale("log", base=2)
        b.set_xticks(n, [str(k) for k in n])
        b.set(title="(b) fewer training masses", xlabel="training masses", ylabel="clean test pooled Dice (%)")
        b.legend(fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(5.0, 3.2))
        names = ["small", "middle", "large", "all"]
        x = range(len(names))
        for k, (model, label) in enumerate((("fcn", "FCN"), ("multi_fcn", "multi-scale FCN"))):
            ax.bar([i + 0.38 * (k - 0.5) for i in x], [100 * s["groups"][g][model]["dice_pooled_mean"] for g in names],
                   0.38, yerr=[100 * s["groups"][g][model]["dice_pooled_std"] for g in names], capsize=2, label=label)
        lo = min(100 * s["groups"][g][m]["dice_pooled_mean"] for g in names for m in ("fcn", "multi_fcn"))
        ax.set_ylim(lo - 5, None)
        ax.set_xticks(list(x), [f"{g}\n({s['groups'][g]['n']} ROIs)" for g in names])
        ax.set(title=f"{s['boxes']} boxes, by mass size", ylabel="test pooled Dice (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in RENDER:
        ap.add_argument(f"--{name}", type=Path, default=None, metavar="DIR", help=f"a finished `tinyseg study {name}`")
    ap.add_argument("--check", action="store_true", help="exit 1 if a table or the quotes are out of date")
    a = ap.parse_args()
    stale = []
    for name, render in RENDER.items():
        src = getattr(a, name)
        dest = STUDIES / name
        if src is not None and not a.check:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / f"{name}_study.json", dest / f"{name}_study.json")
        s = load(name)
        if s is None:
            continue
        md = render(s)
        if a.check:
            if (dest / f"{name}_study.md").read_text() != md:
                stale.append(str(dest / f"{name}_study.md"))
        else:
            (dest / f"{name}_study.md").write_text(md)
            draw(name, s, dest / f"{name}_study.png")
    text = quotes_text()
    if a.check:
        if not QUOTES.exists() or QUOTES.read_text() != text:
            stale.append(str(QUOTES))
        if stale:
            print("out of date (run python tools/make_studies.py):", *stale, sep="\n  ")
            return 1
        return 0
    QUOTES.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
