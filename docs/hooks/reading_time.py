"""MkDocs hook: each lesson and derivation page states its reading time, computed from the page.

The time is counted on the rendered page, so text and code included by snippets count, and it
is counted anew on every build, so it follows the page as it changes; no page types it. What a
reader reads without opening anything counts: the words of the prose at ``WORDS_PER_MINUTE``,
and the lines of code blocks, program output and display math at ``LINES_PER_MINUTE`` (an
inline formula counts as one word). Collapsed blocks (``<details>`` without ``open``) are not
counted; a reader opens them on demand.

Where the time goes: a page's ``**Time:**`` line (the lessons have one, pointing to the run
times) gets the reading time in front of what it says; a page without one gets a ``**Time:**``
line under its title; ``<!-- reading-time -->`` on a line of its own puts that line there
instead.

Listed under ``hooks:`` in ``mkdocs.yml``; ``tests/docs/test_reading_time.py`` checks the counting.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

PAGES = ("lessons/", "derivations/")
WORDS_PER_MINUTE = 200
LINES_PER_MINUTE = 10
MARK = '<span class="tinyseg-reading-time"></span>'
EXPLICIT = "<!-- reading-time -->"
TIME_LINE = re.compile(r"^\*\*Time:\*\*[ \t]*(.*)$", re.MULTILINE)
TITLE = re.compile(r"^# .+$", re.MULTILINE)
WORD = re.compile(r"\w+(?:['’.\-]\w+)*")


class _Counter(HTMLParser):
    """Words of prose and lines of code and display math in an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words = 0
        self.lines = 0
        self._details: list[bool] = []     # per open <details>: is it collapsed?
        self._skip: list[str] = []         # open <script>, <style> or header link (¶)
        self._pre = 0
        self._pre_text: list[str] = []
        self._math: str | None = None      # tag of the arithmatex element being read
        self._math_text: list[str] = []

    @property
    def _hidden(self) -> bool:
        return any(self._details) or bool(self._skip)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "details":
            self._details.append("open" not in a)
        elif tag in ("script", "style") or (tag == "a" and "headerlink" in classes):
            self._skip.append(tag)
        elif tag == "pre":
            self._pre += 1
            if self._pre == 1:
                self._pre_text = []
        elif tag in ("span", "div") and "arithmatex" in classes and self._math is None:
            self._math, self._math_text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "details" and self._details:
            self._details.pop()
        elif self._skip and tag == self._skip[-1]:
            self._skip.pop()
        elif tag == "pre" and self._pre:
            self._pre -= 1
            if self._pre == 0 and not self._hidden:
                self.lines += sum(1 for line in "".join(self._pre_text).splitlines() if line.strip())
        elif tag == self._math:
            if not self._hidden:
                source = "".join(self._math_text).strip()
                if tag == "div":   # display math: one line per row of the formula
                    self.lines += source.count(r"\\") + 1
                else:              # inline math reads as about one word
                    self.words += 1
            self._math = None

    def handle_data(self, data: str) -> None:
        if self._pre:
            self._pre_text.append(data)
        elif self._math is not None:
            self._math_text.append(data)
        elif not self._hidden:
            self.words += len(WORD.findall(data))


def count(html: str) -> tuple[int, int]:
    """(words, lines) a reader reads in `html`: prose words; code, output and display-math lines."""
    counter = _Counter()
    counter.feed(html)
    counter.close()
    return counter.words, counter.lines


def minutes(words: int, lines: int) -> int:
    """Reading time in whole minutes, at least 1."""
    return max(1, round(words / WORDS_PER_MINUTE + lines / LINES_PER_MINUTE))


def sentence(words: int, lines: int) -> str:
    """What the page says, e.g. 'about 12 min to read (1,800 words at 200 a minute, ...)'."""
    return (f"about {minutes(words, lines)} min to read ({words:,} words at {WORDS_PER_MINUTE} a "
            f"minute, {lines:,} lines of code and math at {LINES_PER_MINUTE} a minute)")


def _wanted(page: Any) -> bool:
    uri = page.file.src_uri
    return uri.startswith(PAGES) and not uri.rsplit("/", 1)[-1].startswith("_")


def place_mark(markdown: str) -> str:
    """Put the reading-time placeholder into a page's markdown (see the module docstring)."""
    if EXPLICIT in markdown:
        return markdown.replace(EXPLICIT, f"**Time:** {MARK}.", 1)
    line = TIME_LINE.search(markdown)
    if line:
        rest = line.group(1).strip()
        text = f"**Time:** {MARK}" + (f"; to run the lesson: {rest}" if rest else ".")
        return markdown[:line.start()] + text + markdown[line.end():]
    title = TITLE.search(markdown)
    at = title.end() if title else 0
    return markdown[:at] + f"\n\n**Time:** {MARK}.\n" + markdown[at:]


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    return place_mark(markdown) if _wanted(page) else markdown


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    if MARK not in html:
        return html
    words, lines = count(html.replace(MARK, ""))
    return html.replace(MARK, sentence(words, lines), 1)
