"""The built docs site works offline in a real browser.

Builds the site with ``mkdocs build --strict`` (or uses the one in ``$DOCS_SITE_DIR``), serves it
on 127.0.0.1 and opens every page in Debian's headless Chromium through Playwright. Per page:
it loads; no request fails, returns >= 400 or leaves the local server; no JavaScript error; all
math is typeset by the vendored KaTeX (no ``.katex-error``) with its fonts loaded; every image
loads. A full-page screenshot of each page goes to ``$DOCS_SCREENSHOT_DIR`` (or a temporary
folder). The same site is then opened from ``file://``, where math and search must work too.

Nothing is cut off at a 1280 px wide viewport: on every page, no content table, code block
(``pre``), display formula (``.katex-display``) or figure (``img``) is wider than the content column (``.md-content__inner``), and no
code block or table scrolls sideways (its scrollWidth exceeds its clientWidth). Collapsible
blocks are opened before measuring, except mkdocstrings' "Source code in ..." blocks, which show
the package's source as it is (API pages are reference, read on demand). Code blocks are set at
Material's default size, at least ``MIN_CODE_PX`` CSS px computed (the table of contents sits in
the left navigation, ``toc.integrate``, which leaves the column room for 88-column code).

Each lesson and derivation page states its reading time (the build's hook
``docs/hooks/reading_time.py`` computes it).

Skips with a reason when Chromium, Playwright or MkDocs is missing; with
``TINYSEG_REQUIRE_BROWSER=1`` (set by ``.ci/run``) a missing tool fails instead. Chromium is found
through ``$TINYSEG_CHROMIUM``, else ``chromium``, ``chromium-browser`` or ``google-chrome`` on PATH.
Never run ``playwright install``: the test drives the system's Chromium.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
REMOTE_HOSTS = ("unpkg.com", "cdn.jsdelivr.net", "cdnjs.cloudflare.com", "fonts.googleapis.com",
                "fonts.gstatic.com", "api.github.com")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--no-first-run",
                  "--disable-sync", "--disable-quic"]
# Text outside code and typeset math that still looks like LaTeX (\\frac, \\mathrm, ...) or reST
# math (:math:, .. math::): a formula that no delimiter caught, e.g. in a docstring.
RAW_LATEX_JS = r"""() => {
  const out = [];
  const root = document.querySelector('.md-content') || document.body;
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const node = walk.currentNode;
    if (node.parentElement.closest('code, pre, .katex, .arithmatex, script, style')) continue;
    const m = node.textContent.match(/\\[A-Za-z]{2,}|:math:|\.\. math::/);
    if (m) out.push(node.textContent.trim().slice(0, 80));
  }
  return out.slice(0, 10);
}"""
# Every content table, code block and figure that is wider than the content column or scrolls
# sideways. Collapsible blocks are opened first (a reader opens them), except mkdocstrings'
# source blocks. Widths in CSS px; the column's width is its content box.
OVERFLOW_JS = r"""() => {
  const col = document.querySelector('.md-content__inner');
  if (!col) return [];
  for (const d of col.querySelectorAll('details:not([open])')) {
    const s = d.querySelector(':scope > summary');
    if (!(s && /^\s*Source code in /.test(s.textContent))) d.open = true;
  }
  const cs = getComputedStyle(col);
  const box = col.getBoundingClientRect();
  const left = box.left + parseFloat(cs.paddingLeft), right = box.right - parseFloat(cs.paddingRight);
  const width = right - left;
  const out = [];
  const name = (el) => {
    if (el.tagName === 'IMG') return `img ${el.getAttribute('src')}`;
    const text = (el.tagName === 'TABLE' ? (el.rows[0] || el).innerText : el.innerText).trim();
    return `${el.tagName.toLowerCase()} "${text.split('\n')[0].slice(0, 50)}"`;
  };
  for (const el of col.querySelectorAll('table, pre, img, .katex-display')) {
    if (el.closest('details:not([open])')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    // the element that scrolls: pre > code (Material), a table or its scroll wrapper
    const scrollers = [el, ...(el.tagName === 'PRE' ? el.querySelectorAll(':scope > code') : [])];
    const wrap = el.closest('.md-typeset__scrollwrap');
    if (el.tagName === 'TABLE' && wrap) scrollers.push(wrap);
    const sw = Math.max(...scrollers.map(s => s.scrollWidth - s.clientWidth));
    if (r.width > width + 1 || r.right > right + 1 || r.left < left - 1) {
      out.push(`${name(el)}: ${Math.round(r.width)} px wide, column ${Math.round(width)} px`);
    } else if (el.tagName !== 'IMG' && sw > 1) {
      out.push(`${name(el)}: scrolls sideways, content ${Math.round(r.width + sw)} px in ` +
               `${Math.round(r.width)} px (column ${Math.round(width)} px)`);
    }
  }
  return out;
}"""
# Every code block whose computed font size is below MIN_CODE_PX (CSS px), on any page.
MIN_CODE_PX = 13.0
CODE_SIZE_JS = r"""(minPx) => {
  const col = document.querySelector('.md-content__inner');
  if (!col) return [];
  const out = [];
  for (const el of col.querySelectorAll('pre > code')) {
    const px = parseFloat(getComputedStyle(el).fontSize);
    if (px < minPx) out.push(`pre "${el.innerText.trim().split('\n')[0].slice(0, 50)}": ${px.toFixed(1)} px`);
  }
  return out;
}"""
EXPECTED_PAGES = ("index.html", "paper.html", "model.html", "lessons/01_autodiff.html", "api/autodiff.html")


def _unavailable(reason: str) -> None:
    if os.environ.get("TINYSEG_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, but TINYSEG_REQUIRE_BROWSER=1")
    pytest.skip(reason)


def _chromium() -> str | None:
    override = os.environ.get("TINYSEG_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: $DOCS_SITE_DIR, or a fresh strict build."""
    prebuilt = os.environ.get("DOCS_SITE_DIR")
    if prebuilt:
        path = Path(prebuilt).resolve()
        assert (path / "index.html").is_file(), f"DOCS_SITE_DIR={prebuilt} holds no built site (index.html)"
        return path
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        _unavailable('docs extra not installed (pip install -e ".[docs]")')
    out = tmp_path_factory.mktemp("site")
    # Never add -q: MkDocs 1.6 then drops the warnings and --strict passes anyway.
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                             "-d", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture(scope="module")
def pages(site: Path) -> list[str]:
    found = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")
    missing = [p for p in EXPECTED_PAGES if p not in found]
    assert not missing, f"the built site lacks {missing}"
    return found


def test_built_pages_reference_no_remote_host(site: Path, pages: list[str]) -> None:
    offending = [f"{page}: {host}" for page in pages for host in REMOTE_HOSTS
                 if host in (site / page).read_text(encoding="utf-8")]
    assert not offending, "pages that would load from a remote host:\n  " + "\n  ".join(offending)


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    chromium = _chromium()
    if chromium is None:
        _unavailable("no chromium binary (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable('playwright not installed (pip install -e ".[docs]")')
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(site: Path):  # noqa: ANN201
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("DOCS_SCREENSHOT_DIR")
    path = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_page(browser, url: str, is_local, shot: Path | None,  # noqa: ANN001
                overflow: list[str] | None = None, small_code: list[str] | None = None) -> list[str]:
    """Open `url` in a fresh page and return every problem found (empty list: all good).

    With `overflow`, append to it every element wider than the content column (`OVERFLOW_JS`),
    measured after the screenshot so that the screenshot shows the page as a reader finds it.
    With `small_code`, append every code block set below MIN_CODE_PX (`CODE_SIZE_JS`).
    """
    problems: list[str] = []
    blocked: set[str] = set()
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def route(r) -> None:  # noqa: ANN001
        target = r.request.url
        if target.startswith("data:") or target.startswith("blob:") or is_local(target):
            r.continue_()
        else:
            blocked.add(target)
            problems.append(f"remote request blocked: {target}")
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda req: req.url in blocked
            or problems.append(f"request failed: {req.url} ({req.failure})"))
    page.on("response", lambda resp: resp.status >= 400 and problems.append(f"HTTP {resp.status}: {resp.url}"))
    page.on("pageerror", lambda err: problems.append(f"JavaScript error: {err}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error: {msg.text}"))
    try:
        page.goto(url, wait_until="load", timeout=20_000)
        page.wait_for_load_state("networkidle", timeout=10_000)
        page.evaluate("document.fonts.ready.then(() => true)")
        n_math = page.locator(".arithmatex").count()
        if n_math:
            try:
                page.wait_for_function(
                    "document.querySelectorAll('.arithmatex .katex').length >= "
                    "document.querySelectorAll('.arithmatex').length", timeout=5_000)
            except Exception:  # noqa: BLE001 - reported by the count below
                pass
            page.evaluate("document.fonts.ready.then(() => true)")
            n_typeset = page.locator(".arithmatex .katex").count()
            if n_typeset != n_math:
                problems.append(f"some math was not typeset: {n_typeset} of {n_math} .arithmatex elements")
            errors = page.locator(".katex-error")
            for i in range(errors.count()):
                problems.append(f"KaTeX parse error: {errors.nth(i).get_attribute('title') or errors.nth(i).inner_text()}")
            if not page.evaluate("document.fonts.check('16px KaTeX_Main')"):
                problems.append("KaTeX fonts not loaded")
        raw = page.evaluate(RAW_LATEX_JS)
        problems += [f"untypeset LaTeX or reST math in the text: {t!r}" for t in raw]
        broken = page.evaluate("Array.from(document.images)"
                               ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        problems += [f"image did not load: {src}" for src in broken]
        if shot is not None:
            page.screenshot(path=str(shot), full_page=True)
        if small_code is not None:
            try:
                small_code += page.evaluate(CODE_SIZE_JS, MIN_CODE_PX)
            except Exception as e:  # noqa: BLE001 - a page that cannot be measured is not a pass
                small_code.append(f"could not measure the code size: {type(e).__name__}: {e}")
        if overflow is not None:
            try:
                overflow += page.evaluate(OVERFLOW_JS)
            except Exception as e:  # noqa: BLE001 - a page that cannot be measured is not a pass
                overflow.append(f"could not measure the widths: {type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - a timeout or crash is one more problem for this page
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        page.close()
    return problems


@pytest.fixture(scope="module")
def visited(browser, server: str, pages: list[str], screenshot_dir: Path) -> dict[str, tuple[list[str], ...]]:  # noqa: ANN001
    """Every page opened once over HTTP at 1280 px: name -> (problems, overflowing elements, small code)."""
    host = urlparse(server).netloc
    out = {}
    for name in pages:
        shot = screenshot_dir / (name.replace("/", "_").removesuffix(".html") + ".png")
        overflow: list[str] = []
        small_code: list[str] = []
        problems = _check_page(browser, server + name, lambda u: urlparse(u).netloc == host, shot, overflow,
                               small_code)
        out[name] = (problems, overflow, small_code)
    return out


def test_every_page_renders_offline_in_chromium(visited: dict[str, tuple[list[str], ...]],
                                                screenshot_dir: Path) -> None:
    failures = {name: problems for name, (problems, *_) in visited.items() if problems}
    pages = list(visited)
    report = "\n".join(f"{name}:\n    " + "\n    ".join(p) for name, p in failures.items())
    assert not failures, f"{len(failures)} of {len(pages)} pages failed (screenshots in {screenshot_dir}):\n{report}"


def test_nothing_is_wider_than_the_content_column_at_1280_px(
        visited: dict[str, tuple[list[str], ...]]) -> None:
    wide = {name: overflow for name, (_, overflow, _) in visited.items() if overflow}
    report = "\n".join(f"{name}:\n    " + "\n    ".join(o) for name, o in wide.items())
    n = sum(map(len, wide.values()))
    assert not wide, f"{n} tables, code blocks or figures on {len(wide)} of {len(visited)} pages are wider " \
                     f"than the content column at 1280 px:\n{report}"


def test_code_blocks_are_at_least_13_px_at_1280_px(visited: dict[str, tuple[list[str], ...]]) -> None:
    small = {name: found for name, (_, _, found) in visited.items() if found}
    report = "\n".join(f"{name}:\n    " + "\n    ".join(f) for name, f in small.items())
    assert not small, f"code blocks set below {MIN_CODE_PX} px on {len(small)} pages:\n{report}"


def test_lesson_and_derivation_pages_state_their_reading_time(site: Path, pages: list[str]) -> None:
    wanted = [p for p in pages if p.startswith(("lessons/", "derivations/"))]
    assert wanted, "the built site has no lesson or derivation pages"
    missing = [p for p in wanted if not re.search(r"about \d+ min to read \([\d,]+ words",
                                                      (site / p).read_text(encoding="utf-8"))]
    left = [p for p in pages if "tinyseg-reading-time" in (site / p).read_text(encoding="utf-8")]
    assert not missing, f"pages without a computed reading time: {missing}"
    assert not left, f"pages with an unfilled reading-time placeholder: {left}"


def test_math_and_search_work_from_file_urls(browser, site: Path) -> None:  # noqa: ANN001
    for name in ("paper.html", "lessons/01_autodiff.html"):
        problems = _check_page(browser, (site / name).as_uri(), lambda u: u.startswith("file://"), None)
        assert not problems, f"{name} from file://:\n    " + "\n    ".join(problems)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    remote: list[str] = []
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file://", "data:", "blob:"))
               else (remote.append(r.request.url), r.abort()))
    try:
        page.goto((site / "index.html").as_uri(), wait_until="load")
        page.locator("input.md-search__input").focus()
        page.keyboard.type("gradient", delay=20)  # Material searches on key events, not on fill()
        page.wait_for_selector(".md-search-result__item", timeout=10_000)
        hits = page.locator(".md-search-result__item").count()
    finally:
        page.close()
    assert hits > 0, "search found nothing for 'gradient' from file://"
    assert not remote, f"remote requests from file://: {remote}"
