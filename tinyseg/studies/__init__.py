"""Studies of what one component buys, beyond Table 2: each trains its own runs (resumable,
``--jobs``, bit-identical to one job at one thread per job, as `tinyseg table2`), scores them on
the test split with paired image-level tests and bootstrap CIs, and writes JSON and Markdown.

* `run_crf_study` — the CRF at inference on fixed unaries, as the FCN's quality varies (lesson 03);
* `run_adversarial_study` — robustness against the training ε, and the small-data regime (lesson 04);
* `run_multiscale_study` — the multi-scale FCN against one FCN per mass-size third (lesson 05).

See: docs/results.md ("What each component buys"), tests/studies/test_studies.py.
"""
import json
from pathlib import Path
from typing import Any

from .adversarial import (N_TRAIN, TRAIN_EPS, render_adversarial_study, run_adversarial_study,
                          summarize_adversarial)
from .crf import CRF_EPOCHS, render_crf_study, run_crf_study, summarize_crf
from .multiscale import render_multiscale_study, run_multiscale_study, size_thirds, summarize_multiscale

__all__ = ["CRF_EPOCHS", "N_TRAIN", "TRAIN_EPS", "render_adversarial_study", "render_crf_study",
           "render_multiscale_study", "run_adversarial_study", "run_crf_study", "run_multiscale_study",
           "size_thirds", "summarize_adversarial", "summarize_crf", "summarize_multiscale", "load_committed"]


COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "results" / "studies"


def load_committed(name: str) -> dict[str, Any] | None:
    """The committed result of study `name` (``docs/results/studies/NAME/NAME_study.json`` of a
    clone), or None where there is none (an installed package without the docs)."""
    path = COMMITTED / name / f"{name}_study.json"
    return json.loads(path.read_text()) if path.exists() else None
