"""MkDocs hook: numbers in the prose of a page, read at build time from the committed results.

A page writes ``<!-- measured:KEY -->`` where a measured number belongs; the build replaces it
with the value that ``MEASURED[KEY]`` reads from a committed JSON file, so the page and the
result it quotes cannot drift apart. An unknown key or a missing file stops the build.

Listed under ``hooks:`` in ``mkdocs.yml``; ``tests/docs/test_measured.py`` checks every key.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!--\s*measured:([\w.-]+)\s*-->")


def _json(path: str) -> dict[str, Any]:
    return json.loads((ROOT / path).read_text(encoding="utf-8"))


def _baseline(preset: str, name: str) -> str:
    """Pooled test Dice of a baseline in a committed Table-2 result, e.g. '0.891'."""
    table = _json(f"docs/results/{preset}/table2.json")
    return f"{table['baselines'][name]['dice_pooled']:.3f}"


def _gpu_epochs() -> str:
    """Wall time of 100 epochs of the full model on the GPU, e.g. '40 s'."""
    run = _json("benchmarks/results/epochs_gpu_run2.json")
    assert run["epochs"] == 100 and run["variant"] == "adv_multi_fcn_crf", run
    return f"{run['seconds_total']:.0f} s"


def _gpu_step_ratios() -> str:
    """Range over the variants of tinyseg's GPU step time over PyTorch's, e.g. '1.0–2.4×'."""
    ratios = [row["ratio"] for row in _json("benchmarks/results/train_step_gpu_run2.json")["summary"]]
    return f"{min(ratios):.1f}–{max(ratios):.1f}×"


def _launch_cut() -> str:
    """Range over the variants of a training step's array operations, plain over fast paths."""
    rows = _json("benchmarks/results/launch_count.json")["rows"]
    cuts = [row["plain"]["step"]["ops"] / row["fused"]["step"]["ops"] for row in rows]
    return f"{min(cuts):.1f}–{max(cuts):.1f}×"


def _fcn_parameters() -> str:
    """Parameters of one FCN of Table 1 (FCN 1, the `fcn` variant), in millions, e.g. '2.2'."""
    from tinyseg.models import build_model

    return f"{sum(p.data.size for p in build_model('fcn').parameters()) / 1e6:.1f}"


def _verified_fast_paths() -> str:
    """The fast paths `tinyseg.cuda.VERIFIED` lists, with the GPU and day each was checked on."""
    from tinyseg.cuda import VERIFIED

    names = ", ".join(f"`{name}`" for name in VERIFIED) + (" alone" if len(VERIFIED) == 1 else "")
    checks = "; ".join(f"{' '.join(r['gpu'].split(',')[0].split()[:2])} on {r['date']}" for r in VERIFIED.values())
    return f"{names} (checked on an {checks})"


MEASURED: dict[str, Callable[[], str]] = {
    "prior_dice.phantom": lambda: _baseline("phantom", "prior_only"),
    "prior_dice.ddsm_bcrp": lambda: _baseline("ddsm_bcrp", "prior_only"),
    "otsu_dice.phantom": lambda: _baseline("phantom", "otsu"),
    "gpu_100_epochs": _gpu_epochs,
    "gpu_step_ratios": _gpu_step_ratios,
    "launch_cut": _launch_cut,
    "fcn_parameters_millions": _fcn_parameters,
    "verified_fast_paths": _verified_fast_paths,
}


def fill(markdown: str) -> str:
    """Replace every ``<!-- measured:KEY -->`` in `markdown` by its value."""
    def value(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in MEASURED:
            raise KeyError(f"<!-- measured:{key} -->: unknown key; known: {', '.join(MEASURED)}")
        return MEASURED[key]()
    return MARKER.sub(value, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return fill(markdown)
