"""Hostile feeds next to healthy ones: bombs, entities, a huge feed, tricklers, loops, bad bytes and bad links."""

from __future__ import annotations

import functools
import json
import re
import struct
import time
import zlib
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.kit.reliability import (
    Daemon,
    FeedItem,
    FeedServer,
    HookedSinkHandler,
    Route,
    Setup,
    WebhookReceiver,
    mail_parts,
    place,
    running,
    send,
    smtp,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

RSS_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
MAX_RSS = 200 * 1024 * 1024
HEALTHY = 3
# (link as written in the XML, why it is hostile). Each item alerts; none of these links may be shown.
BAD_LINKS = [
    ("javascript:alert(1)", "javascript"),
    ("  JavaScript:alert(1)", "javascript, case and spaces"),
    ("java\tscript:alert(1)", "javascript split by a tab"),
    ("java\nscript:alert(1)", "javascript split by a newline"),
    ("java&#x09;script:alert(1)", "javascript split by an encoded tab"),
    ("java&#x0A;script:alert(1)", "javascript split by an encoded newline"),
    ("&#106;avascript:alert(1)", "javascript behind a character reference"),
    ("vbscript:msgbox(1)", "vbscript"),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "data"),
    ("file:///etc/passwd", "file"),
    ("//evil.example.net/x", "scheme-relative"),
]
CRLF_TITLES = [
    "Shelling near {name}&#13;&#10;Bcc: victim@example.org",
    "Shelling near {name}\r\nX-Injected: yes",
    "Shelling near {name}&#10;&#10;<b>body</b>",
    # An RFC 2047 encoded word: decoded by a header parser, it would be a Reply-To and an early body.
    "Shelling near {name} =?utf-8?q?=0D=0AReply-To:_x@evil.example=0D=0A=0D=0AYour_mailbox_is_full?=",
]
# The Slack channel's webhook answers 404 echoing the path it was posted to: its token must not leak.
ECHO_TOKEN = "EchoT0kenNeverShown42"
ECHO_PATH = f"/services/T0HOST/B0ILE/{ECHO_TOKEN}"


@functools.cache
def gzip_bomb(mib: int = 300) -> bytes:
    """~300 KB of gzip that inflates to 300 MiB of NULs behind the start of a feed.

    After a full flush deflate starts afresh, so one compressed MiB of zeros can be repeated as is;
    the trailer's CRC and length are those of the whole inflated body, making it a valid gzip file.
    """
    head = b'<?xml version="1.0"?><rss version="2.0"><channel><title>'
    zeros = bytes(1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
    chunk = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    last = co.flush()
    crc = zlib.crc32(head)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, (len(head) + mib * len(zeros)) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first + chunk * mib + last + trailer


def billion_laughs(name: str) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{"".join(f"&lol{n - 1};" for _ in range(10))}">' for n in range(1, 10)
    ]
    return (
        RSS_HEAD + f"<!DOCTYPE rss [{''.join(entities)}]>"
        '<rss version="2.0"><channel><title>&lol9;</title>'
        f'<item><guid isPermaLink="false">laughs</guid><title>Shelling near {name} &lol9;</title>'
        "<link>https://news.example.org/laughs</link><description>&lol9;</description></item></channel></rss>"
    ).encode()


def external_entity(name: str) -> bytes:
    return (
        RSS_HEAD + '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<rss version="2.0"><channel><title>x</title>'
        f'<item><guid isPermaLink="false">xxe</guid><title>Shelling near {name} &xxe;</title>'
        "<link>https://news.example.org/xxe</link><description>&xxe;</description></item></channel></rss>"
    ).encode()


def huge_feed(items: int, name: str) -> bytes:
    body = [RSS_HEAD, '<rss version="2.0"><channel><title>huge</title>']
    for n in range(items):
        title = f"Shelling near {name}" if n == items // 2 else f"Weather report number {n} for the region"
        body.append(
            f'<item><guid isPermaLink="false">h{n}</guid><title>{title}</title>'
            f"<link>https://news.example.org/huge/{n}</link><description>Item {n} of a long feed.</description></item>"
        )
    body.append("</channel></rss>")
    return "".join(body).encode()


def namespace_heavy(name: str, *, broken: bool = False) -> bytes:
    """~1 MiB of prefixed elements around an alerting item (feedparser needed 20 s for this); ``broken``
    leaves the document ill-formed, so only feedparser could read it and its deadline must stop it.
    """
    noise = "<x:n>1</x:n>" * 90_000
    body = (
        RSS_HEAD + '<rss version="2.0" xmlns:x="http://x.example/"><channel><title>ns</title>'
        f'<item><guid isPermaLink="false">ns-{int(broken)}</guid><title>Shelling near {name}</title>'
        f"<link>https://news.example.org/ns/{int(broken)}</link>{noise}</item></channel></rss>"
    )
    return (body.replace("</channel>", "</chanel>") if broken else body).encode()


def deeply_nested(levels: int = 100_000) -> bytes:
    """An item wrapped around 100,000 levels of elements (feedparser grew 10 MiB of this to 600 MB)."""
    return (
        RSS_HEAD + '<rss version="2.0"><channel><title>deep</title><item><guid isPermaLink="false">deep</guid>'
        "<title>Deep</title>" + "<d>" * levels + "</d>" * levels + "</item></channel></rss>"
    ).encode()


def invalid_utf8(name: str) -> bytes:
    return (
        RSS_HEAD.encode() + b'<rss version="2.0"><channel><title>bad \xff\xfe bytes</title>'
        b'<item><guid isPermaLink="false">nul</guid><title>Shelling near '
        + name.encode()
        + b" \x00\xc3\x28 \x00</title>"
        b"<link>https://news.example.org/nul\x00</link><description>\x00\x01\x02 \xed\xa0\x80</description></item>"
        b"</channel></rss>"
    )


def fixed(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> Route:
    """A static document, with an ETag as any file server would give it."""
    etag = f'"{zlib.crc32(body):08x}"'

    def route(req: BaseHTTPRequestHandler) -> None:
        unchanged = req.headers.get("If-None-Match") == etag
        send(
            req, 304 if unchanged else 200, b"" if unchanged else body, content_type, {**(headers or {}), "ETag": etag}
        )

    return route


def redirect(to: str) -> Route:
    def route(req: BaseHTTPRequestHandler) -> None:
        send(req, 302, b"", "text/plain", {"Location": to})

    return route


def trickle(server: FeedServer) -> Route:
    def route(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/rss+xml")
        req.send_header("Content-Length", "1000000")
        req.end_headers()
        try:
            for _ in range(60):  # one byte every 0.25 s: never silent long enough for a read timeout
                if server.stopping.is_set():
                    return
                req.wfile.write(b" ")
                req.wfile.flush()
                time.sleep(0.25)
        except OSError:
            return

    return route


def shown_links(text: str) -> list[str]:
    """Every URL-ish thing a reader could click or copy: href/src attributes and scheme:… tokens."""
    links = re.findall(r"""(?:href|src)\s*=\s*["']?([^"'\s>]*)""", text, re.I)
    links += re.findall(r"\b[a-z][a-z0-9+.-]*:[^\s<>\"']+", text, re.I)
    return links


def assert_only_web_links(text: str, where: str) -> None:
    for link in shown_links(text):
        scheme = link.split(":", 1)[0].lower()
        if scheme in ("javascript", "vbscript", "data", "file"):
            raise AssertionError(f"{where}: {link!r} was rendered")
    for link in re.findall(r"""href\s*=\s*["']?([^"'\s>]*)""", text, re.I):
        parts = urlsplit(link)
        assert parts.scheme in ("http", "https"), f"{where}: href {link!r}"
        assert parts.netloc, f"{where}: href {link!r}"


def headers_of(raw: bytes) -> list[tuple[str, str]]:
    """Header fields as sent on the wire, folded lines joined; the body is not looked at."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + line)
        else:
            name, sep, value = line.partition(":")
            assert sep, f"header line without a colon: {line!r}"
            fields.append((name, value))
    return fields


class TestHostileFeeds:
    @pytest.mark.parametrize("workers", [0, 2], ids=["parse-in-thread", "parse-workers"])
    def test_hostile_feeds_leave_healthy_ones_and_memory_alone(self, tmp_path: Path, workers: int) -> None:
        """Bombs, entity tricks, a 10,000-item feed, namespace-heavy and deeply nested documents, a trickler, a
        redirect loop, broken bytes, an HTML page and hostile links or titles never stop the healthy feeds'
        alerts, never render a non-web link, never put a line break into a mail header, and keep every process
        of the daemon under 200 MiB; with parse workers, one of them SIGKILLed costs one poll, not parsing for
        good.
        """
        server = FeedServer().start()
        hook = WebhookReceiver().start()
        echo = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        echo.expect_request(ECHO_PATH, method="POST").respond_with_handler(
            lambda req: Response(f"Cannot POST {req.path} ({quote(req.path, safe='')})", status=404)
        )
        echo.start()
        feeds: dict[str, str] = {}
        expected: set[str] = set()
        n = 0

        def name() -> str:
            nonlocal n
            n += 1
            return place(1000 + n)

        for h in range(HEALTHY):
            feed = f"healthy{h}"
            feeds[feed] = server.add_feed(feed)
            for _ in range(3):
                title = name()
                expected.add(title)
                server.add_item(feed, FeedItem(title, f"Shelling near {title}", f"https://news.example.org/{title}"))
        feeds["links"] = server.add_feed("links")
        for link, _why in BAD_LINKS:
            title = name()
            expected.add(title)
            server.add_item("links", FeedItem(title, f"Shelling near {title}", link, raw_link=True))
        # A guid without isPermaLink="false" becomes the item's link in feedparser.
        guid_title = name()
        expected.add(guid_title)
        feeds["guidlink"] = server.url("/guidlink.xml")
        server.routes["/guidlink.xml"] = fixed(
            (
                RSS_HEAD + '<rss version="2.0"><channel><title>g</title><item><guid>javascript:alert(2)</guid>'
                f"<title>Shelling near {guid_title}</title></item></channel></rss>"
            ).encode(),
            "application/rss+xml",
        )
        feeds["crlf"] = server.add_feed("crlf")
        for pattern in CRLF_TITLES:
            title = name()
            expected.add(title)
            server.add_item("crlf", FeedItem(title, pattern.format(name=title), f"https://news.example.org/{title}"))
        huge_name = name()
        expected.add(huge_name)
        ns_name = name()
        expected.add(ns_name)  # read by the fast path in well under a second
        hostile = {
            "/ns.xml": fixed(namespace_heavy(ns_name), "application/rss+xml"),
            "/nsbroken.xml": fixed(namespace_heavy(name(), broken=True), "application/rss+xml"),
            "/deep.xml": fixed(deeply_nested(), "application/rss+xml"),
            "/bomb.xml": fixed(gzip_bomb(), "application/rss+xml", {"Content-Encoding": "gzip"}),
            "/laughs.xml": fixed(billion_laughs(name()), "application/rss+xml"),
            "/xxe.xml": fixed(external_entity(name()), "application/rss+xml"),
            "/huge.xml": fixed(huge_feed(10_000, huge_name), "application/rss+xml"),
            "/trickle.xml": trickle(server),
            "/loop/a.xml": redirect("/loop/b.xml"),
            "/loop/b.xml": redirect("/loop/a.xml"),
            "/utf8.xml": fixed(invalid_utf8(name()), "application/rss+xml; charset=utf-8"),
            "/page.html": fixed(b"<!DOCTYPE html><html><body><h1>Shelling</h1></body></html>", "text/html"),
        }
        for path, route in hostile.items():
            server.routes[path] = route
            if path != "/loop/b.xml":
                feeds[path.strip("/").split("/")[0].split(".")[0]] = server.url(path)
        assert 100_000 < len(gzip_bomb()) < 1_000_000

        with smtp() as sink:
            setup = Setup(
                feeds,
                smtp_port=sink.port,
                webhook_url=hook.url,
                slack_url=echo.url_for(ECHO_PATH),
                # The hostile feeds stand for other publishers' hosts: the per-host limit is not the subject.
                polling_extra=(
                    f'per_host = 32\ntotal_timeout = "4s"\nparse_workers = {workers}\n'
                    'parse_timeout = "3s"\nparse_memory = "128MiB"\n'
                ),
            )
            daemon = Daemon(tmp_path, setup)
            try:
                with running(daemon):

                    def arrived() -> set[str]:
                        got = {d.alert["title"] for d in hook.deliveries}
                        return {t for t in expected if any(t in g for g in got)}

                    wait_until(lambda: arrived() == expected, 30, "every healthy alert")
                    wait_until(lambda: server.hits["/trickle.xml"] >= 2, 15, "the trickling feed to be retried")
                    wait_until(lambda: len(sink.handler.messages) >= len(expected), 15, "the mails")
                    if workers:
                        victims = daemon.parse_workers()
                        assert victims, "no parse worker processes"
                        victims[0].kill()
                        victims[0].wait(5)
                        late = name()
                        expected.add(late)
                        server.add_item("healthy0", FeedItem(late, f"Shelling near {late}", f"https://x.org/{late}"))
                        wait_until(lambda: arrived() == expected, 20, "an alert parsed after a worker was killed")
                        wait_until(lambda: len(sink.handler.messages) >= len(expected), 15, "its mail")
                    assert daemon.alive()
                    failed: dict[str, set[str]] = {}
                    for e in daemon.events("feed_failed"):
                        failed.setdefault(e["feed"], set()).add(e["error"])
                    status = json.loads(daemon.cli("status", "--json").stdout)
                    wait_until(lambda: daemon.count("delivery_dead") >= 1, 15, "the echoing Slack receiver's answer")
                    said = daemon.cli("status").stdout + daemon.cli("alerts", "list", "--json").stdout
            finally:
                server.stop()
                hook.stop()
                echo.stop()
            assert isinstance(sink.handler, HookedSinkHandler)
            raw_mails = list(sink.handler.raw)
            mails: list[EmailMessage] = list(sink.handler.messages)
            recipients = list(sink.handler.recipients)

        mib = 2**20
        print(
            f"peak RSS: daemon {daemon.peak_rss / mib:.1f} MiB, largest child {daemon.peak_child_rss / mib:.1f} MiB, "
            f"all together {daemon.peak_total_rss / mib:.1f} MiB; failures: "
            + json.dumps({k: sorted(v) for k, v in failed.items()}, indent=1)
        )
        assert 0 < daemon.peak_rss < MAX_RSS
        assert daemon.peak_child_rss < MAX_RSS
        if workers:
            assert daemon.count("parse_pool_restarted") >= 1
            assert daemon.count("feed_parse_crashed") == 0
        # The SIGKILL breaks the worker pool: the polls parsing at that moment (one per worker at most) fail once.
        died = "the parser process died while this feed was being parsed"
        hit_by_kill = [feed for feed, errors in failed.items() if died in errors]
        assert len(hit_by_kill) <= workers, hit_by_kill
        for feed in hit_by_kill:
            failed[feed].discard(died)
        assert any("after decompression" in e for e in failed["bomb"])
        assert any("redirect loop" in e for e in failed["loop"])
        assert any("total time limit" in e for e in failed["trickle"])
        assert any("HTML page" in e for e in failed["page"])
        assert failed["nsbroken"] == {"parse took longer than 3 s"}  # feedparser stopped at its deadline
        assert "ns" not in failed
        assert failed.get("deep", set()) <= {"parse took longer than 3 s", "parse exceeded 128 MiB"}
        assert {f["name"] for f in status["feeds"] if f["health"] == "ok"} >= {f"healthy{h}" for h in range(HEALTHY)}

        everything = [json.dumps(d.alert) for d in hook.deliveries]
        for mail in mails:
            text, html = mail_parts(mail)
            assert_only_web_links(text, f"text part of {mail['Subject']}")
            assert_only_web_links(html, f"HTML part of {mail['Subject']}")
            everything += [text, html]
        for d in hook.deliveries:
            link = d.alert["link"]
            assert link is None or urlsplit(link).scheme in ("http", "https"), link
            assert_only_web_links(json.dumps(d.alert), "webhook body")
        joined = "\n".join(everything)
        assert "root:x:0:0" not in joined  # the external entity was never fetched
        assert "lollollol" not in joined  # nor the entities expanded into an alert
        assert "\x00" not in joined
        for raw in raw_mails:
            names = [k.strip().lower() for k, _ in headers_of(raw)]
            assert "bcc" not in names, names
            assert "x-injected" not in names, names
            assert "reply-to" not in names, names
            assert names.count("from") == 1, names
        # The echo reached the log and the dead letters, with the token masked everywhere.
        log_text = daemon.log_path.read_text(errors="replace")
        assert "Cannot POST" in log_text
        for secret in (ECHO_TOKEN, "T0HOST", "B0ILE"):
            assert secret not in log_text
            assert secret not in said
            assert secret.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "var").glob("feedwatch.db*"))
        assert all(r == ["desk@example.org"] for r in recipients)
        for mail in mails:
            for key, value in mail.items():
                assert not {"\r", "\n"} & set(str(value)), (key, value)
