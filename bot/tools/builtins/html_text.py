"""HTML to readable plain text with the standard library's parser.

Scripts, styles, forms and navigation chrome are dropped; block elements become line
breaks, list items get a bullet, links keep their target when it differs from the text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "form"})
CHROME = frozenset({"nav", "footer", "aside"})
BLOCK = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "br", "hr", "tr", "table",
        "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "figure", "figcaption",
        "h1", "h2", "h3", "h4", "h5", "h6",
    }
)  # fmt: skip
VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "source", "area", "col"})


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._in_title = False
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in SKIP or tag in CHROME:
            if tag not in VOID:
                self._skip += 1
            return
        if self._skip:
            return
        if tag in BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("\n• ")
        if tag == "a":
            href = dict(attrs).get("href") or ""
            self._href = href if href.startswith(("http://", "https://")) else None
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in SKIP or tag in CHROME:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag in BLOCK:
            self.parts.append("\n")
        if tag == "a" and self._href:
            text = "".join(self._link_text).strip()
            if text and text != self._href:
                self.parts.append(f" ({self._href})")
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        if self._skip:
            return
        self.parts.append(data)
        if self._href is not None:
            self._link_text.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """The page's title and its readable text (whitespace collapsed, blank lines squeezed)."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    lines = (
        re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip()
        for line in "".join(parser.parts).split("\n")
    )
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title).split())
    return title, text
