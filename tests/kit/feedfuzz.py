"""Seeded generator of feed documents that vary every field the parsers read: formats (RSS 2.0, RSS 0.91,
RSS 1.0, Atom 1.0), element order, permalink and plain guids, relative links, escaped and CDATA markup,
non-ASCII and mis-decoded text, C1 controls, media:title/description, and dates in the shapes feeds use
(and some they should not).
"""

from __future__ import annotations

import random
from xml.sax.saxutils import escape, quoteattr

RFC822_ZONES = ["GMT", "+0000", "-0500", "+0530", "EST", "PDT", "UT", "Z", "CEST", "+05:30"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
WORDS = ["shelling", "ceasefire", "Karabakh", "Ереван", "Tbilisi", "Straße", "café", "naïve", "東京", "drone"]
TEXTS = [
    "Plain words",
    "AT&amp;T &lt;b&gt;bold&lt;/b&gt;",
    "<![CDATA[<p>Para <a href='x'>link</a></p> & more]]>",
    "Caf\u00c3\u00a9 mojibake",  # UTF-8 read as Latin-1, which feedparser repairs
    "smart \u0093quotes\u0094 in C1",
    "",
    "  spaced   out  ",
    "&#8220;numeric&#8221; refs &#x41;",
]


def rfc822(rng: random.Random) -> str:
    day = rng.randint(1, 28)
    year = rng.choice([str(rng.randint(1995, 2030)), f"{rng.randint(0, 99):02d}"])
    time = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}" + (
        f":{rng.randint(0, 59):02d}" if rng.random() < 0.8 else ""
    )
    head = f"{rng.choice(DAYS)}, " if rng.random() < 0.8 else ""
    return f"{head}{day} {rng.choice(MONTHS)} {year} {time} {rng.choice(RFC822_ZONES)}"


def w3dtf(rng: random.Random) -> str:
    date = f"{rng.randint(1995, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if rng.random() < 0.15:
        return date
    time = f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    if rng.random() < 0.2:
        time += f".{rng.randint(0, 999):03d}"
    return date + time + rng.choice(["Z", "+00:00", "-05:00", "+05:30", "", "+0100", "+0000"])


def odd_date(rng: random.Random) -> str:
    return rng.choice(["yesterday", "2024/01/02", "Mon Jan  1 10:00:00 2024", "31 Feb 2024 10:00:00 GMT", ""])


def date(rng: random.Random) -> str:
    r = rng.random()
    return rfc822(rng) if r < 0.5 else w3dtf(rng) if r < 0.9 else odd_date(rng)


def text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return escape(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))))
    return rng.choice(TEXTS)


def link(rng: random.Random, n: int) -> str:
    return rng.choice([
        f"https://news.example/a/{n}",
        f"/relative/{n}",
        f"https://news.example/q?a=1&amp;b={n}",
        f"http:///news.example/{n}",
        "javascript:alert(1)",
        f" https://news.example/space/{n} ",
    ])  # fmt: skip


def rss_item(rng: random.Random, n: int, *, rdf: bool) -> str:
    parts = []
    if rng.random() < 0.9:
        parts.append(f"<title>{text(rng)}</title>")
    if rng.random() < 0.8:
        parts.append(f"<link>{link(rng, n)}</link>")
    if not rdf and rng.random() < 0.7:
        attr = rng.choice(["", ' isPermaLink="false"', ' isPermaLink="true"', ' isPermaLink="True"'])
        value = rng.choice([f"urn:uuid:{n}", f"https://news.example/g/{n}", f"{n}", f"/rel/{n}"])
        parts.insert(rng.randint(0, len(parts)), f"<guid{attr}>{value}</guid>")
    if rng.random() < 0.8:
        parts.append(f"<description>{text(rng)}</description>")
    if rng.random() < 0.3:
        parts.append(f"<content:encoded>{text(rng)}</content:encoded>")
    if rng.random() < 0.7:
        parts.append(f"<pubDate>{date(rng)}</pubDate>" if rng.random() < 0.7 else f"<dc:date>{date(rng)}</dc:date>")
    if rng.random() < 0.2:
        parts.append(f"<dc:date>{w3dtf(rng)}</dc:date>")
    if rng.random() < 0.3:
        parts.append(f"<dc:creator>{text(rng)}</dc:creator>")
    if rng.random() < 0.15:
        parts.append(
            f"<media:group><media:title>{text(rng)}</media:title>"
            f"<media:description>{text(rng)}</media:description></media:group>"
        )
    if rng.random() < 0.1:
        parts.append('<enclosure url="https://news.example/a.mp3" length="1" type="audio/mpeg"/>')
    rng.shuffle(parts) if rng.random() < 0.3 else None
    about = f' rdf:about="https://news.example/about/{n}"' if rdf else ""
    return f"<item{about}>{''.join(parts)}</item>"


def atom_entry(rng: random.Random, n: int) -> str:
    parts = []
    if rng.random() < 0.9:
        kind = rng.choice(["", ' type="text"', ' type="html"'])
        parts.append(f"<title{kind}>{text(rng)}</title>")
    for _ in range(rng.choice([0, 1, 1, 1, 2])):
        rel = rng.choice(["", ' rel="alternate"', ' rel="self"', ' rel="enclosure"', ' rel="ALTERNATE"'])
        kind = rng.choice(["", ' type="text/html"', ' type="application/xhtml+xml"', ' type="application/pdf"'])
        parts.append(f"<link{rel}{kind} href={quoteattr(link(rng, n).replace('&amp;', '&'))}/>")
    if rng.random() < 0.9:
        parts.insert(
            rng.randint(0, len(parts)), f"<id>{rng.choice([f'urn:uuid:{n}', f'https://news.example/e/{n}'])}</id>"
        )
    if rng.random() < 0.7:
        parts.append(f"<summary>{text(rng)}</summary>")
    if rng.random() < 0.5:
        if rng.random() < 0.5:
            parts.append(f'<content type="html">{text(rng)}</content>')
        else:
            parts.append(
                f'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>{text(rng)}</p></div></content>'
            )
    for tag in rng.sample(["published", "updated"], rng.randint(0, 2)):
        parts.append(f"<{tag}>{w3dtf(rng) if rng.random() < 0.9 else odd_date(rng)}</{tag}>")
    if rng.random() < 0.5:
        parts.append(f"<author><name>{text(rng)}</name></author>")
    return f"<entry>{''.join(parts)}</entry>"


def document(seed: int) -> bytes:
    """One generated feed document (UTF-8)."""
    rng = random.Random(seed)
    kind = rng.choice(["rss20", "rss20", "rss091", "rdf", "atom", "atom"])
    n_items = rng.randint(0, 8)
    channel_link = f"<link>{rng.choice(['https://site.example/', '/home', ''])}</link>" if rng.random() < 0.8 else ""
    ns = (
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:media="http://search.yahoo.com/mrss/"'
    )
    if kind == "atom":
        entries = "".join(atom_entry(rng, seed * 100 + i) for i in range(n_items))
        home = f"<link href={quoteattr(rng.choice(['https://site.example/', '/home']))}/>" if rng.random() < 0.7 else ""
        body = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{text(rng)}</title>{home}{entries}</feed>'
    elif kind == "rdf":
        items = "".join(rss_item(rng, seed * 100 + i, rdf=True) for i in range(n_items))
        body = (
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" {ns}>'
            f"<channel><title>{text(rng)}</title>{channel_link}</channel>{items}</rdf:RDF>"
        )
    else:
        items = "".join(rss_item(rng, seed * 100 + i, rdf=False) for i in range(n_items))
        version = "2.0" if kind == "rss20" else "0.91"
        body = f'<rss version="{version}" {ns}><channel><title>{text(rng)}</title>{channel_link}{items}</channel></rss>'
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body).encode("utf-8")
