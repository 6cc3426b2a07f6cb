"""URL hygiene: which links may be shown, a canonical form for identity and story matching, and the checks
that a configured host and port can be connected to at all."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Tracking parameters that never change what a link points at.
_TRACKING = re.compile(r"^(utm_[a-z_]+|fbclid|gclid|dclid|mc_cid|mc_eid|yclid|igshid|ref_src|_hsenc|_hsmi)$", re.I)
# Controls (browsers drop tab/CR/LF, so ``java\nscript:`` would be ``javascript:``), line separators and
# bidi controls (which can make "exe.pdf" of "fdp.exe"): a link holding one is refused, never repaired.
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s")  # the characters str.isspace() is true of (both use Py_UNICODE_ISSPACE)
# Most links: an absolute http(s) URL whose host is ASCII letters, digits, hyphens and dots (and maybe a
# port), then nothing or a path, query or fragment. urlsplit would read scheme http(s), that host, and no
# userinfo, so safe_link accepts such a link without parsing it. The rest holds no character _REFUSED or
# _SPACE finds, so one match settles the usual link.
_PLAIN_HTTP = re.compile(
    r"(?i:https?)://[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::[0-9]*)?"
    "(?:[/?#][^\\s\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]*)?"
)


def safe_link(raw: str | None, base: str | None = None) -> str | None:
    """The one test of what may be shown as a link: an absolute http(s) URL with a host, or None.

    Surrounding whitespace is trimmed; a space, control or bidi character inside refuses the link (it is
    never silently removed: ``x y`` is not ``xy``), and so does userinfo (``https://bank.example@evil.example/``
    goes to evil.example).
    """
    if not raw:
        return None
    cleaned = raw.strip()
    if _PLAIN_HTTP.fullmatch(cleaned):
        return cleaned
    if not cleaned or _REFUSED.search(cleaned) or _SPACE.search(cleaned):
        return None
    return _parsed_link(cleaned, base)


def _parsed_link(cleaned: str, base: str | None) -> str | None:
    if base and not urlsplit(cleaned).scheme:
        base_parts = urlsplit(base)
        if base_parts.scheme in ("http", "https"):
            cleaned = urljoin(base, cleaned)
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return cleaned


def canonical_url(url: str | None) -> str | None:
    """Lower-case scheme and host, no fragment, no default port, tracking parameters removed."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    scheme = parts.scheme.lower()
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


_LDH = re.compile(r"[A-Za-z0-9_-]+")  # letters, digits, hyphen; underscore too, which resolvers accept


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot be connected to as written, or None when it can.

    An IP address passes. A name passes when every label is 1-63 characters of letters, digits, ``-``
    or ``_``, and every ``xn--`` label is a valid IDNA 2008 A-label; a name with non-ASCII letters must
    encode under IDNA 2008 (the ``idna`` package, as httpx encodes it; Python's own codec is IDNA 2003
    and would map ``faß.de`` to another host, ``fass.de``).
    """
    if not host:
        return "no host"
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
        return None
    except ValueError:
        pass
    if not host.isascii():
        import idna  # here: most hosts are plain ASCII, and every command that reads config checks them

        try:
            idna.encode(host.lower())
        except idna.IDNAError as exc:
            return f"host {host!r} is not a valid internationalized name ({exc})"
        return None
    name = host[:-1] if host.endswith(".") else host  # a trailing dot names the root
    if len(name) > 253:
        return f"host name longer than 253 characters ({len(name)})"
    for label in name.split("."):
        if not label or len(label) > 63 or not _LDH.fullmatch(label):
            return f"host {host!r} is not a valid host name (label {label!r})"
        if label[:4].lower() == "xn--":
            import idna

            try:
                idna.decode(label.lower())
            except idna.IDNAError as exc:
                return f"host {host!r}: {label!r} is not a valid IDNA A-label ({exc})"
    return None


def ascii_host(host: str) -> str:
    """The host as sent on the wire: IDNA 2008 A-labels for a non-ASCII name (validate it first)."""
    if host.isascii():
        return host
    import idna

    return str(idna.encode(host.lower()).decode("ascii"))


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL one can connect to (scheme, host, port 1-65535), or None.

    The message never repeats the URL, which may hold a secret; it names the host, which does not.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port out of 0-65535 or not a number
        return f"invalid port ({exc}); expected 1-65535"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "expected an absolute http(s) URL with a host"
    if port == 0:
        return "invalid port 0; expected 1-65535"
    return host_problem(parts.hostname)


# A first path segment that reads as a host name (news.example.org, example.org:8080), not a file.
_HOSTLIKE = re.compile(r"^(?:[a-z0-9-]+\.)+(?P<tld>[a-z]{2,63})(?::\d{1,5})?$", re.I)
_FILE_SUFFIXES = {"xml", "rss", "atom", "rdf", "json", "jsonl", "txt", "feed", "opml", "html", "htm", "toml"}


def missing_scheme(raw: str) -> str | None:
    """``https://`` + ``raw`` when ``raw`` is a web address typed without its scheme, else None.

    "news.example.org/rss" would otherwise be taken for a file path beside the config and fail at
    every poll with "file not found"; "seeds/demo.xml" and "local.xml" stay paths.
    """
    if "://" in raw or raw.startswith(("/", ".", "~", "file:")):
        return None
    first = re.split(r"[/?#]", raw, maxsplit=1)[0]
    match = _HOSTLIKE.match(first)
    if match is None or match["tld"].lower() in _FILE_SUFFIXES:
        return None
    return f"https://{raw}"
