"""One notation on every page: the table on docs/glossary.md ("Notation") is the reference, and
the spellings it retired fail here.

Scanned: the pages whose formulas use the CRF, adversarial and multi-scale notation (SCANNED).
Every other page is in NOT_SCANNED with the reason, so that a new page cannot slip past both.
Two places may show the paper's own spelling: the verbatim print of Eq. 5 on the paper page,
between its two `<!-- notation: ... -->` comments, and the "the paper writes" column of the table.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SCANNED = [
    "paper.md", "model.md", "glossary.md", "results.md", "performance.md",
    "lessons/03_crf.md", "lessons/04_adversarial.md", "lessons/05_multiscale.md", "lessons/06_evaluation.md",
    "derivations/mean_field.md", "derivations/crf_backward.md", "derivations/image_gradient.md",
    "derivations/adversarial.md", "derivations/_crf_example.md", "lessons/02_fcn.md",
]
VERBATIM_START = "<!-- notation: the paper's print follows, verbatim -->"
VERBATIM_END = "<!-- notation: end of the paper's print -->"
NOT_MATHBB = r"(?<!\\mathbb )(?<!\\mathbb)(?<![A-Za-z\\{])"  # a bare P, not ℙ (\mathbb P, \mathbb{P})

# (pattern, a retired spelling it must catch, the current spelling it must let through)
RETIRED = [
    # the partition function was 𝒵 (Z names logits only): now Ω
    (r"\\mathcal\s*\{?\s*Z", r"e^{-E}/\mathcal Z", r"e^{-E}/\Omega"),
    # the log-partition function was log Z
    (r"\\log\s*Z\b", r"F(Q) \ge -\log Z", r"F(Q) \ge -\log\Omega"),
    # the normaliser of Eq. 5 was Z_i: now ν_i
    (r"\\frac\{1\}\{Z_i\}", r"Q_i(y_i) = \frac{1}{Z_i}\exp(-\psi_u)", r"Q_i(l) = e^{Z_i(l)}/\nu_i"),
    # a standard normal variable was Z
    (r"\\lvert\s*Z\s*\\rvert|standard normal \$Z\$", r"P(\lvert Z \rvert > z)", r"\mathbb P(\lvert \xi \rvert > x)"),
    # P named a probability as well as the pixel count: probabilities are ℙ
    (NOT_MATHBB + r"P\s*(?:\\bigl|\\big|\\left)?\(", r"$P(\mathbf y) \propto e^{-E}$",
     r"$\mathbb P(\mathbf y)$, $(P-1)$"),
    (NOT_MATHBB + r"P_\{?fcn", r"\log P_{fcn}(y_i)", r"\log \mathbb{P}_{fcn}(y_i)"),
    (r"\\log\s*" + NOT_MATHBB + r"P\b", r"gradient of $\log P$", r"gradient of $\log \mathbb P$"),
    (r"\\\|\s*(?:\\,)?\s*P\s*\)", r"\mathrm{KL}(Q\,\|\,P)", r"\mathrm{KL}(Q\,\|\,\mathbb P)"),
    (r"=\s*P\s*\$?\s*,", r"$\exp(-\psi_u) = P$, a probability", r"$= \mathbb P(y_i \mid I)$, a"),
    # the all-ones vector 𝟏 named the identity in the projection Id − ĝĝᵀ
    (r"\\mathbf\s*\{?1\}?\s*-\s*\\hat", r"\big(\mathbf 1 - \hat g\hat g^\top\big)",
     r"\big(\mathrm{Id} - \hat g\hat g^\top\big)"),
    # the messages: the paper's accented Q's of Eq. 5 ...
    (r"\\(?:tilde|check|hat|breve)\s*\{?Q", r"\tilde Q^{(m)}_i(l)", r"s_m(i, l)"),
    # ... M, S, C, A for the steps of the corrected Eq. 5 ...
    (r"\bM_i\^|\b[SCA]_i\(", r"S_i(\color{#c00}{l'})", r"s_m(i, \color{#c00}{l'})"),
    # ... and A_{m,t} = K_m Q_{t-1} on the backward pages: now s_{m,t}
    (r"\bA_\{m,\s*t\}|\bA_t\b", r"a_{t,l} = \partial\mathcal L/\partial A_t", r"s_{m,t} = K_mQ_{t-1}"),
    # the intensity kernel was kernel 1 on two pages: it is kernel 0
    (r"intensity kernel \$k\^\{\(1\)\}|k\^\{\(1\)\}_\{ij\}\s*(?:\\propto|=)[^$]*I_i",
     r"intensity kernel $k^{(1)}_{ij} \propto e^{-(I_i - I_j)^2/2}$", r"intensity kernel $k^{(0)}_{ij}$"),
    (r"intensity kernel[^.]*?w\^\{\(1\)\}", r"the intensity kernel by $P-1$, a reparametrisation of $w^{(1)}$",
     r"the intensity kernel by $P-1$, a reparametrisation of $w^{(0)}$"),
    # the kernel matrix was K^{(m)} on two pages: K_m
    (r"K\^\{\(m\)\}", r"\sum_m w^{(m)} K^{(m)} Q", r"\sum_m w^{(m)} K_m Q"),
    # iterations were superscripts Q^{(t)}, q^{(t)}: now subscripts, as Z_t
    (r"\b[Qq]\^\{\((?:t|0|T)", r"Q^{(t)} = \operatorname{softmax}(Z_t)", r"Q_t = \operatorname{softmax}(Z_t)"),
    # the rows of the separable position kernel were y_i, the label's letter: now u_i
    (r"e\^\{-\(y_i\s*-\s*y_j\)", r"e^{-(y_i-y_j)^2}e^{-(x_i-x_j)^2}", r"e^{-(u_i-u_j)^2}e^{-(v_i-v_j)^2}"),
    # a CRF weight without its label index
    (r"\bw_m\b", r"\mathrm{softmax}(U + \sum_m w_m K_m Q)", r"\sum_m w_{m,l}\,s_m"),
    # the Hessian was H, the image height's letter
    (r"(?<![\\\w])(?<!\\mathcal )H\s*=\s*\\nabla_I\^2", r"$H = \nabla_I^2\mathcal L$",
     r"$\mathcal H = \nabla_I^2\mathcal L$"),
    # an FCN's probabilities were p_k, the position's letter: now π_k
    (r"\bp_k\b", r"\prod_k p_k^{\,c}", r"\prod_k \pi_k^{\,c}"),
]
NOT_SCANNED = {  # page: why the scan leaves it out
    "index.md": "the home page: no formulas in this notation",
    "paper_map.md": "a table of links: no formulas in this notation",
    "data.md": "its P(f) is the power spectrum of the synthetic background, not a probability",
    "lessons/01_autodiff.md": "the engine, in the FCN's notation",
    "derivations/conv.md": "its p_k, p_c are one softmax's class probabilities (the retired p_k is an FCN's, "
                           "in the multi-scale fusion)",
}


def _page_text(name: str) -> str:
    """The page with the two places that may use the paper's spelling blanked out."""
    text = (DOCS / name).read_text(encoding="utf-8")
    if name == "paper.md":
        text = re.sub(re.escape(VERBATIM_START) + ".*?" + re.escape(VERBATIM_END), "", text, flags=re.S)
    if name == "glossary.md":
        text = "\n".join(_drop_paper_column(line) for line in text.splitlines())
    return text


def _table_rows(text: str) -> list[list[str]]:
    section = text.split("## Notation", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in _split_row(row)] for row in rows]


def _split_row(row: str) -> list[str]:
    return re.split(r"(?<!\\)\|", row.strip().strip("|"))


def _drop_paper_column(line: str) -> str:
    if not line.startswith("| ") or "the paper writes" in line:
        return line
    cells = _split_row(line)
    return "|".join(cells[:3] + cells[4:]) if len(cells) == 5 else line


def test_the_notation_table_exists_and_names_the_symbols_the_pages_use() -> None:
    rows = _table_rows((DOCS / "glossary.md").read_text(encoding="utf-8"))
    assert rows[0] == ["symbol", "meaning", "in the code", "the paper writes", "first on"]
    body = [r for r in rows[2:]]
    assert len(body) >= 25 and all(len(r) == 5 for r in body), [r for r in body if len(r) != 5]
    symbols = " ".join(r[0] for r in body)
    for symbol in (r"$P$", r"$Z_t$", r"$s_{m,t}$", r"$\mathbf 1$", r"$\mathrm{Id}$", r"$\Omega$", r"$\nu_i$",
                   r"$\mathbb P$", r"$k^{(0)}_{ij}$", r"$k^{(1)}_{ij}$", r"$w_{m,l}$", r"$\delta_t$",
                   r"$\alpha_{k,l}$"):
        assert symbol in symbols, symbol
    meanings = {r[0]: r[1] for r in body}
    assert "intensity" in meanings[r"$k^{(0)}_{ij}$, $K_0$"] and "position" in meanings[r"$k^{(1)}_{ij}$, $K_1$"]


def test_the_notation_tables_code_names_exist_in_the_package() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "tinyseg").rglob("*.py")))
    rows = _table_rows((DOCS / "glossary.md").read_text(encoding="utf-8"))[2:]
    missing = [(r[0], name) for r in rows for name in re.findall(r"`([^`]+)`", r[2]) if name not in source]
    assert not missing, f"code names in the notation table that the package does not contain: {missing}"


@pytest.mark.parametrize("pattern,retired,current", RETIRED, ids=[r[1][:40] for r in RETIRED])
def test_each_retired_pattern_catches_its_spelling_and_passes_the_current_one(pattern, retired, current) -> None:
    assert re.search(pattern, retired), f"{pattern!r} misses the retired {retired!r}"
    assert not re.search(pattern, current), f"{pattern!r} flags the current {current!r}"


def test_scanned_pages_exist_and_the_papers_print_is_the_only_exempt_region() -> None:
    for name in SCANNED:
        assert (DOCS / name).is_file(), name
    paper = (DOCS / "paper.md").read_text(encoding="utf-8")
    assert paper.count(VERBATIM_START) == 1 and paper.count(VERBATIM_END) == 1
    region = paper.split(VERBATIM_START, 1)[1].split(VERBATIM_END, 1)[0]
    assert r"\tag{5}" in region and len(region) < 2000  # the print of Eq. 5 and its caption, nothing more
    others = [p for p in DOCS.rglob("*.md") if p.name != "paper.md" and "notation: " in p.read_text(encoding="utf-8")]
    assert not others, others


def test_every_page_is_scanned_or_left_out_with_a_reason() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md")}
    for folder in ("lessons", "derivations"):
        pages |= {p.relative_to(DOCS).as_posix() for p in (DOCS / folder).glob("*.md")}
    assert pages == set(SCANNED) | set(NOT_SCANNED), pages ^ (set(SCANNED) | set(NOT_SCANNED))
    assert not set(SCANNED) & set(NOT_SCANNED)


def test_no_page_uses_a_retired_spelling() -> None:
    hits = []
    for name in SCANNED:
        for lineno, line in enumerate(_page_text(name).splitlines(), 1):
            for pattern, retired, _ in RETIRED:
                for m in re.finditer(pattern, line):
                    hits.append(f"docs/{name}: {m.group(0)!r} (retired like {retired!r}) in {line.strip()[:90]!r}")
    assert not hits, "retired notation (see the table in docs/glossary.md):\n" + "\n".join(hits)
