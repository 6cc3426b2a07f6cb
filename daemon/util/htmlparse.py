"""The full HTML reader behind ``text.html_to_text`` for markup its quick path declines (comments,
declarations, a stray "<"): html.parser, imported only when a feed has such markup.
"""

from __future__ import annotations

from html.parser import HTMLParser

from daemon.util.text import BLOCK_TAGS, SKIP_TAGS


class TextExtractor(HTMLParser):
    """Collects visible text: data outside skipped elements, a space at each block boundary."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIP_TAGS:
            self.skip_depth += 1
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def extract_text(html: str) -> str:
    """The text ``TextExtractor`` collects from ``html``, whitespace not yet collapsed."""
    parser = TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)
