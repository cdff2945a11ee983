"""Each lesson and derivation page states its reading time, computed at build time from the page by
the MkDocs hook docs/hooks/reading_time.py, never typed: the counting, where the time goes, and
that the hook is configured. The built pages are checked by tests/docs/test_docs_browser.py."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from helpers import load_script  # tests/ is on sys.path (rootdir conftest)

ROOT = Path(__file__).resolve().parents[2]


def _hook():  # noqa: ANN202
    return load_script("docs/hooks/reading_time.py")


def _page(uri: str) -> SimpleNamespace:
    return SimpleNamespace(file=SimpleNamespace(src_uri=uri))


def test_reading_time_counts_prose_words_and_code_and_math_lines() -> None:
    rt = _hook()
    html = ('<h2 id="a">A title<a class="headerlink" href="#a">¶</a></h2>'
            "<p>One two three, four's five-six <code>x</code> "
            '<span class="arithmatex">\\(a + b\\)</span>.</p>'
            '<pre><code>line 1\n\n  line 2\nline 3\n</code></pre>'
            '<div class="arithmatex">\\[x = 1 \\\\ y = 2\\]</div>'
            "<details><summary>Hidden</summary><p>not read</p><pre><code>a\nb</code></pre></details>"
            "<details open><summary>Shown</summary><p>read me</p></details>"
            "<script>var ignored = 1;</script>")
    words, lines = rt.count(html)
    # "A title" 2, "One two three four's five-six x" 6, the inline formula 1, "Shown read me" 3
    assert words == 12
    # three non-empty code lines and a display formula of two rows
    assert lines == 5


def test_reading_time_is_words_and_lines_at_the_stated_rates() -> None:
    rt = _hook()
    assert rt.minutes(0, 0) == 1
    assert rt.minutes(rt.WORDS_PER_MINUTE * 10, rt.LINES_PER_MINUTE * 5) == 15
    text = rt.sentence(2345, 120)
    assert text.startswith(f"about {rt.minutes(2345, 120)} min to read")
    assert "2,345 words" in text and f"{rt.WORDS_PER_MINUTE} a minute" in text and "120 lines" in text


def test_reading_time_fills_the_time_line_of_a_lesson_and_adds_one_to_a_derivation() -> None:
    rt = _hook()
    lesson = "# Lesson 09\n\nIntro.\n\n**Time:** see the [table](../index.md).\n\nBody.\n"
    out = rt.on_page_markdown(lesson, page=_page("lessons/09_x.md"))
    assert f"**Time:** {rt.MARK}; to run the lesson: see the [table](../index.md)." in out
    assert out.count(rt.MARK) == 1

    derivation = "# A derivation\n\nBody.\n"
    out = rt.on_page_markdown(derivation, page=_page("derivations/x.md"))
    assert out.startswith(f"# A derivation\n\n**Time:** {rt.MARK}.\n")

    explicit = "# A derivation\n\nIntro.\n\n<!-- reading-time -->\n\nBody.\n"
    out = rt.on_page_markdown(explicit, page=_page("derivations/x.md"))
    assert f"Intro.\n\n**Time:** {rt.MARK}.\n\nBody." in out

    for other in ("index.md", "paper.md", "derivations/_generated.md"):
        assert rt.on_page_markdown(lesson, page=_page(other)) == lesson

    html = f"<p><strong>Time:</strong> {rt.MARK}.</p><p>{' '.join(['word'] * 450)}</p>"
    filled = rt.on_page_content(html, page=_page("derivations/x.md"))
    assert rt.MARK not in filled and "about 2 min to read (451 words" in filled


def test_reading_time_hook_is_configured_and_no_page_types_a_reading_time() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^hooks:\s*\n(?:\s+- \S+[^\n]*\n)*?\s+- docs/hooks/reading_time\.py", config, re.MULTILINE), (
        "mkdocs.yml must list docs/hooks/reading_time.py under hooks:")
    assert re.search(r"^exclude_docs:[^\n]*\n(?:\s+\S[^\n]*\n)*?\s+hooks/\s*$", config, re.MULTILINE), (
        "docs/hooks/ must be in exclude_docs (a hook is not a page or an asset of the site)")
    typed = re.compile(r"\d+\s*(?:min|minutes?)\s+(?:to read|read)\b|reading time:?\*{0,2}\s*\d", re.IGNORECASE)
    pages = sorted((ROOT / "docs" / "lessons").glob("*.md")) + sorted((ROOT / "docs" / "derivations").glob("*.md"))
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in pages for m in typed.finditer(p.read_text())]
    assert not found, "reading times typed into pages (the hook computes them):\n" + "\n".join(found)
