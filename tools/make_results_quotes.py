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
* ``docs/results/<preset>_drawn/protocols.md``: the two protocols side by side, tight and drawn
  boxes, one row per variant and baseline (pooled Dice ± sd, the image-level test against
  `fcn`, the paper's column).
* ``docs/results/<preset>_drawn/components.md``: what each component changes under each
  protocol, as the image-level paired tests against `fcn` measure it.

Presets ``phantom`` and ``ddsm_bcrp`` are the paper's protocol (tight boxes); ``phantom_drawn``
and ``ddsm_bcrp_drawn`` the same tables with ``--boxes drawn``.

No number in these files is typed: a new run of ``tinyseg table2`` plus ``tools/make_results.py``
rewrites them. ``tests/docs/test_results_quotes.py`` fails when they are stale or when a page
includes a section that does not exist.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {name: ROOT / f"docs/results/{name}/table2.json"
           for name in ("phantom", "ddsm_bcrp", "phantom_drawn", "ddsm_bcrp_drawn")}
TIGHT_AND_DRAWN = {"phantom": "phantom_drawn", "ddsm_bcrp": "ddsm_bcrp_drawn"}
# What each component adds, as the table's image-level tests against fcn measure it.
COMPONENTS = [("CRF", "fcn_crf"), ("adversarial training", "adv_fcn"), ("multi-scale", "multi_fcn"),
              ("multi-scale + CRF", "multi_fcn_crf"), ("all four (the paper's best)", "adv_multi_fcn_crf")]
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


def protocol_quote(tight: dict[str, Any], drawn: dict[str, Any]) -> str:
    """One paragraph: what drawn boxes change for the baselines and for `fcn`."""
    def pooled(table: dict[str, Any], name: str) -> float:
        return table["baselines"][name]["dice_pooled"] if name in table["baselines"] else \
            table["rows"][name]["dice_pooled_mean"]

    parts = []
    for name, label in (("prior_only", "the prior-only baseline"), ("otsu", "Otsu thresholding"), ("fcn", "`fcn`")):
        a, b = pooled(tight, name), pooled(drawn, name)
        parts.append(f"{label} from {pct(a)} to {pct(b)} ({points(b - a)})")
    margin = [t["rows"]["fcn"]["dice_pooled_mean"] - t["baselines"]["prior_only"]["dice_pooled"] for t in (tight, drawn)]
    best = max(drawn["rows"], key=lambda v: drawn["rows"][v]["dice_pooled_mean"])
    return (f"From tight to drawn boxes the test pooled Dice goes, for {parts[0]}, for {parts[1]} and for "
            f"{parts[2]}: the FCN's margin over the prior goes from {points(margin[0])} to {points(margin[1])}. "
            f"The best variant under drawn boxes is `{best}` at {mean_sd(drawn['rows'][best])} "
            f"(mean ± sd over {seeds(drawn)} seeds).")


def render_quotes(tables: dict[str, dict[str, Any]]) -> str:
    lines = ["<!-- Generated by tools/make_results_quotes.py from docs/results/*/table2.json; do not edit.",
             "     Pages include one section: --8<-- \"docs/outputs/table2_quotes.md:phantom_crf_vs_fcn\" -->", ""]
    for preset, table in tables.items():
        for claim, text in quotes(table).items():
            name = f"{preset}_{claim}"
            lines += [f"<!-- --8<-- [start:{name}] -->", text, f"<!-- --8<-- [end:{name}] -->", ""]
    for tight, drawn in TIGHT_AND_DRAWN.items():
        if tight in tables and drawn in tables:
            name = f"{tight}_protocols"
            lines += [f"<!-- --8<-- [start:{name}] -->", protocol_quote(tables[tight], tables[drawn]),
                      f"<!-- --8<-- [end:{name}] -->", ""]
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


def vs_fcn_cell(row: dict[str, Any]) -> str:
    """'−0.58, p = 7.5·10⁻⁴': mean per-image Dice difference to fcn (points) and the Wilcoxon p."""
    vs = row.get("vs_fcn")
    if not vs:
        return "—"
    return f"{points(vs['paired_mean_dice_difference']).removesuffix(' points')}, p = {p_value(vs['paired_p_wilcoxon'])}"


def render_protocols(tight: dict[str, Any], drawn: dict[str, Any]) -> str:
    """Tight and drawn boxes side by side: pooled Dice ± sd and the test against fcn, per variant."""
    col, name = paper_column(tight)
    lines = ["| variant | tight boxes (%) | drawn boxes (%) | vs fcn, tight: Δ, p | vs fcn, drawn: Δ, p "
             f"| paper, {name.split('-')[0]} (%) |", "|---|---|---|---|---|---|"]
    for v, r in tight["rows"].items():
        d = drawn["rows"][v]
        lines.append(f"| `{v}` | {100 * r['dice_pooled_mean']:.2f} ± {100 * r['dice_pooled_std']:.2f} "
                     f"| {100 * d['dice_pooled_mean']:.2f} ± {100 * d['dice_pooled_std']:.2f} "
                     f"| {vs_fcn_cell(r)} | {vs_fcn_cell(d)} | {r['paper_dice'][col]:.2f} |")
    for b, r in tight["baselines"].items():
        lines.append(f"| *{b.replace('_', '-')}* | {100 * r['dice_pooled']:.2f} "
                     f"| {100 * drawn['baselines'][b]['dice_pooled']:.2f} | — | — | — |")
    return "\n".join(lines) + "\n"


def render_components(tight: dict[str, Any], drawn: dict[str, Any]) -> str:
    """What each component adds under each protocol: mean per-image Dice difference to fcn, sign and
    Wilcoxon p; and the FCN's margin over the prior (pooled; no paired test is stored for it)."""
    def cell(table: dict[str, Any], v: str) -> str:
        vs = table["rows"][v]["vs_fcn"]
        return (f"{points(vs['paired_mean_dice_difference']).removesuffix(' points')} "
                f"(sign p = {p_value(vs['paired_p_sign'])}, Wilcoxon p = {p_value(vs['paired_p_wilcoxon'])})")

    def margin(table: dict[str, Any]) -> str:
        d = table["rows"]["fcn"]["dice_pooled_mean"] - table["baselines"]["prior_only"]["dice_pooled"]
        return f"{points(d).removesuffix(' points')} (pooled; no paired test)"

    lines = ["| component | compared | tight boxes: Δ per-image Dice | drawn boxes: Δ per-image Dice |",
             "|---|---|---|---|",
             f"| FCN over the prior | `fcn` − prior-only | {margin(tight)} | {margin(drawn)} |"]
    for name, v in COMPONENTS:
        if v in tight["rows"] and v in drawn["rows"]:
            lines.append(f"| {name} | `{v}` − `fcn` | {cell(tight, v)} | {cell(drawn, v)} |")
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    """Every generated file and its text."""
    # A preset without results yet writes nothing; a page that quotes it fails its test until it has them.
    tables = {p: json.loads(path.read_text(encoding="utf-8")) for p, path in PRESETS.items() if path.is_file()}
    files = {QUOTES: render_quotes(tables)}
    for preset, table in tables.items():
        files[PRESETS[preset].with_name("table2_compact.md")] = render_compact(table)
    for tight, drawn in TIGHT_AND_DRAWN.items():
        if tight not in tables or drawn not in tables:
            continue
        files[PRESETS[drawn].with_name("protocols.md")] = render_protocols(tables[tight], tables[drawn])
        files[PRESETS[drawn].with_name("components.md")] = render_components(tables[tight], tables[drawn])
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
