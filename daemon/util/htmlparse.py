"""The full HTML reader behind ``text.html_to_text`` for markup its quick path declines (comments,
declarations, a stray "<", a script or other element whose content is dropped): html.parser, imported
only when a feed has such markup.
"""

from __future__ import annotations

from collections.abc import Set
from html.parser import HTMLParser


class TextExtractor(HTMLParser):
    """Collects visible text: data outside ``skip`` elements, a space at each ``block`` element's edges."""

    def __init__(self, *, skip: Set[str], block: Set[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self._skip = skip
        self._block = block

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._skip:
            self.skip_depth += 1
        elif tag in self._block:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._block:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._skip:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self._block:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def extract_text(html: str, *, skip: Set[str], block: Set[str]) -> str:
    """The text ``TextExtractor`` collects from ``html``, whitespace not yet collapsed."""
    parser = TextExtractor(skip=skip, block=block)
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)
