"""Write the sentences and the compact tables that the docs quote from Table 2.

    python tools/make_results_quotes.py            # writes the files below
    python tools/make_results_quotes.py --check    # exit 1 if any of them is out of date

Reads ``docs/results/<preset>/table2.json`` (copied there by ``tools/make_results.py``) and writes

* ``docs/outputs/table2_quotes.md``: one snippet section per claim, each a generated sentence
  with the numbers (mean ± sd over seeds, the difference, the image-level tests' p). A page
  quotes one with ``--8<-- "docs/outputs/table2_quotes.md:phantom_crf_vs_fcn"`` on a line of its
  own (indent it to continue a list item). Section names are ``<preset>_<claim>``, preset
  ``phantom`` or ``ddsm_bcrp``; the claims are the keys of `quotes` below.
* ``docs/results/<preset>/table2_compact.md``: variant | pooled Dice ± sd | 95 % CI | vs fcn |
  paper, the table that fits the results page's column (the full ``table2.md`` sits below it in
  a collapsible block).

No number in these files is typed: a new run of ``tinyseg table2`` plus ``tools/make_results.py``
rewrites them. ``tests/test_results_quotes.py`` fails when they are stale or when a page
includes a section that does not exist.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"phantom": ROOT / "docs/results/phantom/table2.json",
           "ddsm_bcrp": ROOT / "docs/results/ddsm_bcrp/table2.json"}
QUOTES = ROOT / "docs/outputs/table2_quotes.md"
ALPHA = 0.05
NB = "\u00a0"  # no-break space: "90.13 ± 0.47 %" never wraps inside a number
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def pct(x: float) -> str:
    """0.90129 -> '90.13 %' (no-break space)."""
    return f"{100 * x:.2f}{NB}%"


def mean_sd(row: dict[str, Any]) -> str:
    """The pooled Dice of a row as 'mean ± sd %' over its seeds."""
    return f"{100 * row['dice_pooled_mean']:.2f}{NB}±{NB}{100 * row['dice_pooled_std']:.2f}{NB}%"


def points(d: float) -> str:
    """A difference of two Dice fractions in percentage points, signed: '−0.54 points'."""
    return f"{100 * d:+.2f}".replace("-", "−") + " points"


def p_value(p: float) -> str:
    """'0.148', '0.005', or '7.5·10⁻⁴' below 0.001."""
    if p >= 1e-3:
        return f"{p:.3f}"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa}·10{str(int(exponent)).translate(SUPERSCRIPT)}"


def seeds(table: dict[str, Any]) -> int:
    return int(table["command"]["seeds"])


def paper_column(table: dict[str, Any]) -> tuple[int, str]:
    """Which of the paper's two Dice columns matches the preset (as tinyseg.experiments does)."""
    ddsm = "ddsm" in table["data"] or table["data"].startswith("cbis")
    return (1, "DDSM-BCRP") if ddsm else (0, "INbreast")


def tests_vs_fcn(table: dict[str, Any], variant: str, lead: str = "per test image") -> str:
    """The image-level comparison of `variant` with `fcn`: mean per-image difference, both p."""
    vs = table["rows"][variant]["vs_fcn"]
    ps, pw = vs["paired_p_sign"], vs["paired_p_wilcoxon"]
    if max(ps, pw) < ALPHA:
        verdict = f"both tests reject equality at the {100 * ALPHA:.0f} % level"
    elif min(ps, pw) >= ALPHA:
        verdict = f"neither test rejects equality at the {100 * ALPHA:.0f} % level"
    else:
        verdict = f"only one of the two tests rejects equality at the {100 * ALPHA:.0f} % level"
    return (f"{lead}, the mean Dice difference is {points(vs['paired_mean_dice_difference'])} "
            f"(exact sign test p = {p_value(ps)}, Wilcoxon signed-rank p = {p_value(pw)}, "
            f"{table['n_test']} test ROIs: {verdict})")


def pair(table: dict[str, Any], a: str, b: str, first: bool = True) -> str:
    """'`a` reaches X ± s % against Y ± t % for `b`, a difference of D points'."""
    ra, rb = table["rows"][a], table["rows"][b]
    how = f" (mean ± sd over {seeds(table)} seeds)" if first else ""
    return (f"`{a}` reaches a test pooled Dice of {mean_sd(ra)} against {mean_sd(rb)} for `{b}`{how}, "
            f"a difference of "
            f"{points(ra['dice_pooled_mean'] - rb['dice_pooled_mean'])}")


def per_seed(table: dict[str, Any], a: str, b: str) -> str:
    """The seed-by-seed differences of pooled Dice, `a` minus `b` (the seeds are paired)."""
    da = table["rows"][a]["dice_pooled_seeds"]
    db = table["rows"][b]["dice_pooled_seeds"]
    return ", ".join("0.00" if abs(x - y) < 5e-5 else f"{100 * (x - y):+.2f}".replace("-", "−")
                     for x, y in zip(da, db))


def quotes(table: dict[str, Any]) -> dict[str, str]:
    """Every claim of one preset: section suffix -> one generated paragraph."""
    rows, base, n = table["rows"], table["baselines"], seeds(table)
    fcn, prior, otsu = rows["fcn"], base["prior_only"]["dice_pooled"], base["otsu"]["dice_pooled"]
    lo, hi = fcn["dice_pooled_ci95"]
    above = sum(s > prior for s in fcn["dice_pooled_seeds"])
    inside = "inside" if lo <= prior <= hi else "outside"
    out = {}
    out["fcn_vs_prior"] = (
        f"`fcn` reaches a test pooled Dice of {mean_sd(fcn)} (mean ± sd over {n} seeds; 95 % CI "
        f"{100 * lo:.2f}–{100 * hi:.2f} %) against {pct(prior)} for the prior-only baseline, which "
        f"thresholds the empirical position prior of the training masks: a difference of "
        f"{points(fcn['dice_pooled_mean'] - prior)}, with {above} of {n} seeds above the baseline "
        f"and the baseline {inside} the FCN's 95 % CI. The results store no paired test against "
        f"this baseline.")
    out["otsu"] = (f"Otsu thresholding of the enhanced ROI reaches {pct(otsu)}, "
                   f"{points(fcn['dice_pooled_mean'] - otsu).lstrip('+')} below `fcn`.")
    out["crf_vs_fcn"] = f"{pair(table, 'fcn_crf', 'fcn')}; {tests_vs_fcn(table, 'fcn_crf')}."
    out["multi_vs_fcn"] = f"{pair(table, 'multi_fcn', 'fcn')}; {tests_vs_fcn(table, 'multi_fcn')}."
    out["adv_vs_plain"] = (
        f"{pair(table, 'adv_fcn_crf', 'fcn_crf')} (per seed: {per_seed(table, 'adv_fcn_crf', 'fcn_crf')}; "
        f"the results store no paired test between these two). "
        f"{pair(table, 'adv_fcn', 'fcn', first=False)}; {tests_vs_fcn(table, 'adv_fcn')}.")
    twins = [(v, v.removeprefix("adv_")) for v in rows if v.startswith("adv_") and v.removeprefix("adv_") in rows]
    gaps = {v: rows[v]["dice_pooled_mean"] - rows[p]["dice_pooled_mean"] for v, p in twins}
    worst = max(gaps, key=lambda v: abs(gaps[v]))
    sd = max(r["dice_pooled_std"] for r in rows.values())
    out["adv_all_pairs"] = (
        f"Over all {len(twins)} pairs, the pooled Dice of an `adv_*` variant differs from its plain "
        f"twin's by at most {100 * abs(gaps[worst]):.2f} points (`{worst}`: {points(gaps[worst])}); "
        f"the largest standard deviation over seeds in the table is {100 * sd:.2f} points.")
    out["crf_multi"] = (f"{pair(table, 'multi_fcn_crf', 'multi_fcn')}; "
                        f"{tests_vs_fcn(table, 'multi_fcn_crf', 'against `fcn`, per test image')}.")
    epochs = sorted({e for v in rows if "crf" in v for e in rows[v]["selected_epochs"]})
    multi_epochs = sorted({e for v in rows if "multi" in v for e in rows[v]["selected_epochs"]})
    out["selected_epochs"] = (
        f"Validation kept epochs {epochs[0]}–{epochs[-1]} (of {table['command']['epochs']}) for the "
        f"CRF variants and epochs {multi_epochs[0]}–{multi_epochs[-1]} for the multi-scale ones.")
    mc = rows["multi_fcn"]["vs_fcn"]
    out["mcnemar"] = (
        f"The pixel-level McNemar test counts the {table['n_test'] * 1600:,} pixels of the "
        f"{table['n_test']} test ROIs as independent trials: `multi_fcn` against `fcn` gives "
        f"p = {p_value(mc['mcnemar_p_exact'])} (seed 0), while the image-level tests give "
        f"p = {p_value(mc['paired_p_sign'])} (sign) and {p_value(mc['paired_p_wilcoxon'])} (Wilcoxon) "
        f"for a mean per-image difference of {points(mc['paired_mean_dice_difference'])}.")
    col, name = paper_column(table)
    best = max(rows, key=lambda v: rows[v]["dice_pooled_mean"])
    gap = rows[best]["paper_dice"][col] - 100 * rows[best]["dice_pooled_mean"]
    out["best"] = (
        f"The best variant here is `{best}` at {mean_sd(rows[best])}; the paper reports "
        f"{rows[best]['paper_dice'][col]:.2f} % for it on the real {name} data "
        f"(a different dataset), {abs(gap):.2f} points {'above' if gap > 0 else 'below'} ours.")
    secs = table.get("train_seconds_this_invocation", {})
    total = sum(secs.values())
    out["cost"] = (
        f"{len(rows)} variants × {n} seeds × {table['command']['epochs']} epochs: {len(secs)} training runs, "
        f"{total / 60:.0f} min of training in all (from {min(secs.values()):.0f} s for the fastest run "
        f"to {max(secs.values()):.0f} s for the slowest; evaluation and the baselines not counted).")
    return out


def render_quotes(tables: dict[str, dict[str, Any]]) -> str:
    lines = ["<!-- Generated by tools/make_results_quotes.py from docs/results/*/table2.json; do not edit.",
             "     Pages include one section: --8<-- \"docs/outputs/table2_quotes.md:phantom_crf_vs_fcn\" -->", ""]
    for preset, table in tables.items():
        for claim, text in quotes(table).items():
            name = f"{preset}_{claim}"
            lines += [f"<!-- --8<-- [start:{name}] -->", text, f"<!-- --8<-- [end:{name}] -->", ""]
    return "\n".join(lines)


def render_compact(table: dict[str, Any]) -> str:
    """Table 2 in five columns: variant | pooled Dice ± sd | 95 % CI | vs fcn | paper."""
    col, name = paper_column(table)
    lines = ["| variant | pooled Dice (%) | 95 % CI | vs fcn: Δ per image, Wilcoxon p "
             f"| paper, {name} (%) |", "|---|---|---|---|---|"]
    for v, r in table["rows"].items():
        lo, hi = r["dice_pooled_ci95"]
        vs = r.get("vs_fcn")
        vs_txt = (f"{points(vs['paired_mean_dice_difference']).removesuffix(' points')}, "
                  f"p = {p_value(vs['paired_p_wilcoxon'])}") if vs else "—"
        lines.append(f"| `{v}` | {100 * r['dice_pooled_mean']:.2f} ± {100 * r['dice_pooled_std']:.2f} "
                     f"| {100 * lo:.2f}–{100 * hi:.2f} | {vs_txt} | {r['paper_dice'][col]:.2f} |")
    for b, r in table["baselines"].items():
        lines.append(f"| *{b.replace('_', '-')}* | {100 * r['dice_pooled']:.2f} | — | — | — |")
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    """Every generated file and its text."""
    tables = {p: json.loads(path.read_text(encoding="utf-8")) for p, path in PRESETS.items()}
    files = {QUOTES: render_quotes(tables)}
    for preset, table in tables.items():
        files[PRESETS[preset].with_name("table2_compact.md")] = render_compact(table)
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is stale")
    args = p.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.relative_to(ROOT).as_posix())
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    print("wrote " + ", ".join(stale) if stale else "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
