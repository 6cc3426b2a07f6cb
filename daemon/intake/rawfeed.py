"""What a parser read from a feed document, before our own sanitising: the one shape both parse paths
(the fast ElementTree reader and feedparser) produce, so everything after them is shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One item/entry as the parser read it: markup still in, links not yet checked."""

    title: str = ""
    link: str | None = None
    guid: str | None = None
    guidislink: bool = False  # the link was taken from a permalink guid (RSS 2.0 rule)
    summary: str = ""
    content: tuple[str, ...] = ()
    published: datetime | None = None
    author: str = ""


@dataclass(frozen=True, slots=True)
class RawFeed:
    """A feed document as a parser read it, before sanitising and item identity."""

    title: str
    link: str | None
    entries: tuple[RawEntry, ...]
    ttl: str | None = None
    problem: str | None = None  # why the document is ill-formed but still usable
