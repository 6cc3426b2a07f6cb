"""Hostile rules, titles and receivers next to healthy feeds and channels: a backtracking regex against titles
built for it, encoded-word titles, namespace-heavy and deeply nested feeds, a receiver that trickles its answer
and one that echoes its (secret) path. Healthy alerts keep flowing, nothing leaks, every process stays under
200 MiB.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.kit.reliability import (
    RULES,
    Daemon,
    FeedItem,
    FeedServer,
    HookedSinkHandler,
    Route,
    Setup,
    WebhookReceiver,
    place,
    running,
    send,
    smtp,
    wait_until,
)
from tests.kit.trickle import trickler

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

MAX_RSS = 200 * 1024 * 1024
MiB = 1024 * 1024
RSS_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
HEALTHY = 3
BACKTRACK_RULE = """
[rule.backtrack]
description = "A rule whose regexes backtrack catastrophically on the titles below"
threshold = 1.0

[rule.backtrack.groups.g]
terms = [{ regex = "(a|a)+$" }, { regex = "(\\\\w+\\\\s?)+$" }]
"""
# Titles built for those patterns: `re` would need days on each; one still names shelling and must alert.
BACKTRACK_TITLES = ["a" * 40 + "!", "Shelling {name} " + "a" * 60 + "!", "b" * 3000 + "!"]
# Feed text that a header decoder would turn into header lines; it must arrive as literal text.
ENCODED_TITLES = [
    "Shelling near {name} =?utf-8?q?=0D=0AReply-To:_x@evil.example=0D=0A=0D=0AYour_mailbox_is_full?=",
    "Shelling near {name} =?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?=",  # CRLF "Bcc: victim@example.org"
    "=?iso-8859-1?q?Shelling_near?= {name} =?utf-8?q?=E2=80=AE?=",
]
ECHO_PATH = "/services/T0ECHOTEAM/B0ECHOHOOK/echosecrettoken123"
SECRET_PIECES = ("T0ECHOTEAM", "B0ECHOHOOK", "echosecrettoken123")


def namespace_heavy(name: str, mib: float = 1.5) -> bytes:
    """One item among ~1.5 MiB of prefixed-namespace elements (feedparser's quadratic case)."""
    one = '<ex:meta xmlns:ex="http://example.org/ns">value</ex:meta>'
    return (
        RSS_HEAD + '<rss version="2.0" xmlns:ex="http://example.org/ns"><channel><title>ns</title>'
        f'<item><guid isPermaLink="false">ns1</guid><title>Shelling near {name}</title>'
        "<link>https://news.example.org/ns</link><description>x</description>"
        + one * int(mib * MiB / len(one))
        + "</item></channel></rss>"
    ).encode()


def deeply_nested(name: str, depth: int = 300_000) -> bytes:
    """One item whose description nests 300,000 elements deep (~3.3 MB)."""
    return (
        RSS_HEAD + '<rss version="2.0"><channel><title>deep</title>'
        f'<item><guid isPermaLink="false">deep1</guid><title>Shelling near {name}</title>'
        "<link>https://news.example.org/deep</link><description>"
        + "<div>" * depth
        + "x"
        + "</div>" * depth
        + "</description></item></channel></rss>"
    ).encode()


def fixed(body: bytes) -> Route:
    def route(req: BaseHTTPRequestHandler) -> None:
        send(req, 200, body, "application/rss+xml")

    return route


class TestHostileInputs:
    def test_hostile_rules_titles_and_receivers(self, tmp_path: Path) -> None:
        """A backtracking rule, encoded-word titles, namespace-heavy and deeply nested feeds, a trickling and an
        echoing receiver: healthy alerts arrive by mail and webhook, the overrun is reported once, the trickler
        fails by its deadline, no secret of the echoed path is kept or shown, and memory stays bounded.
        """
        server = FeedServer().start()
        hook = WebhookReceiver().start()
        echo = HTTPServer(host="127.0.0.1", port=0, threaded=True)

        def echo_handler(request: Request) -> Response:
            return Response(f"Cannot POST {request.path}", status=404)

        echo.expect_request(ECHO_PATH, method="POST").respond_with_handler(echo_handler)
        echo.start()
        feeds: dict[str, str] = {}
        expected: set[str] = set()
        n = 0

        def name() -> str:
            nonlocal n
            n += 1
            return place(2000 + n)

        for h in range(HEALTHY):
            feed = f"healthy{h}"
            feeds[feed] = server.add_feed(feed)
            for _ in range(3):
                title = name()
                expected.add(title)
                server.add_item(feed, FeedItem(title, f"Shelling near {title}", f"https://news.example.org/{title}"))
        feeds["backtrack"] = server.add_feed("backtrack")
        for pattern in BACKTRACK_TITLES:
            title = name()
            server.add_item("backtrack", FeedItem(title, pattern.format(name=title), f"https://x.example.org/{title}"))
            if "Shelling" in pattern:
                expected.add(title)
        feeds["encoded"] = server.add_feed("encoded")
        for pattern in ENCODED_TITLES:
            title = name()
            expected.add(title)
            server.add_item("encoded", FeedItem(title, pattern.format(name=title), f"https://x.example.org/{title}"))
        heavy = {"namespaces": namespace_heavy(name()), "nested": deeply_nested(name())}
        for feed, body in heavy.items():
            server.routes[f"/{feed}.xml"] = fixed(body)
            feeds[feed] = server.url(f"/{feed}.xml")

        with (
            smtp() as sink,
            trickler(b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 4096, every=1.0) as slow,
        ):
            setup = Setup(
                feeds,
                smtp_port=sink.port,
                webhook_url=hook.url,
                slack_url=echo.url_for(ECHO_PATH),
                polling_extra="per_host = 32\n",
                extra_channels={"slow": f'type = "webhook"\nurl = "{slow.url}"\ntimeout = "2s"\n'},
            )
            daemon = Daemon(tmp_path, setup, rules=RULES + BACKTRACK_RULE)
            try:
                with running(daemon):

                    def arrived(titles: list[str]) -> set[str]:
                        return {t for t in expected if any(t in g for g in titles)}

                    def by_hook() -> set[str]:
                        return arrived([d.alert["title"] for d in hook.deliveries])

                    def by_mail() -> set[str]:
                        return arrived([str(m["Subject"]) for m in sink.handler.messages])

                    wait_until(lambda: by_hook() == expected, 40, "every healthy alert by webhook")
                    wait_until(lambda: by_mail() == expected, 20, "every healthy alert by mail, past the trickler")
                    wait_until(lambda: daemon.count("rule_regex_overrun") >= 1, 10, "the regex overrun")
                    wait_until(
                        lambda: any("backtrack" in d.alert["title"] for d in hook.deliveries), 10, "the ops alert"
                    )
                    wait_until(lambda: slow.requests >= 2, 20, "the trickling receiver to be tried again")
                    wait_until(lambda: daemon.count("delivery_dead") >= 1, 20, "the echoing receiver's refusal")

                    def heavy_done() -> bool:
                        done = {e["feed"] for e in daemon.events() if e.get("event") in ("feed_polled", "feed_failed")}
                        return set(heavy) <= done

                    wait_until(heavy_done, 40, "the heavy feeds parsed or refused")
                    assert daemon.alive()
                    status = daemon.cli("status", "--json")
                    listed = daemon.cli("alerts", "list")
            finally:
                server.stop()
                hook.stop()
                echo.stop()
            assert isinstance(sink.handler, HookedSinkHandler)
            raw_mails = list(sink.handler.raw)
            recipients = list(sink.handler.recipients)

        mib = 2**20
        failed = {e["feed"]: e["error"] for e in daemon.events("feed_failed")}
        polled = {e["feed"] for e in daemon.events("feed_polled")}
        print(
            f"peak RSS: daemon {daemon.peak_rss / mib:.1f} MiB, largest child {daemon.peak_child_rss / mib:.1f} MiB; "
            f"heavy feeds: " + json.dumps({f: failed.get(f, "ok" if f in polled else "?") for f in heavy})
        )
        assert 0 < daemon.peak_rss < MAX_RSS
        assert daemon.peak_child_rss < MAX_RSS
        for feed in heavy:  # parsed within bounds, or refused with the reason: never stuck, never unbounded
            assert feed in polled or feed in failed, feed

        overruns = daemon.events("rule_regex_overrun")
        assert {e["rule"] for e in overruns} == {"backtrack"}
        ops = [d for d in hook.deliveries if "backtrack" in d.alert["title"]]
        assert len(ops) == 1, [d.alert["title"] for d in ops]

        retries = [e for e in daemon.events("delivery_retry") if e.get("channel") == "slow"]
        assert retries
        assert all("within 2s" in e["error"] for e in retries), retries[:3]

        for raw in raw_mails:
            head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").lower()
            names = [line.split(":", 1)[0] for line in head.split("\r\n") if line and line[0] not in " \t"]
            assert "reply-to" not in names, names
            assert "bcc" not in names, names
        assert all(r == ["desk@example.org"] for r in recipients)

        shown = [daemon.log_path.read_text(errors="replace"), status.stdout, status.stderr, listed.stdout]
        stored = daemon.db.read_bytes()
        for wal in daemon.db.parent.glob("*.db-wal"):
            stored += wal.read_bytes()
        for piece in SECRET_PIECES:
            for text in shown:
                assert piece not in text
            assert piece.encode() not in stored
