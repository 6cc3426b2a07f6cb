"""Secrets never leave through any output: the one redaction function, and every boundary that applies it."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.util.redact import link_url, redact_text, redact_url, restore_secrets
from daemon.util.secret import Secret
from tests.conftest import CLI, cli_env

SLACK_TOKEN = "xoxbSlackT0kenSecret42"
HOOK_TOKEN = "wh0okPathT0ken77"
FEED_PASSWORD = "s3cr3tPass"
FEED_KEY = "K3yValue123"
BROKEN_TOKEN = "T0kenValue99"
SECRETS = (SLACK_TOKEN, "B0WATCH", "T0FEED", HOOK_TOKEN, FEED_PASSWORD, FEED_KEY, BROKEN_TOKEN)


class TestRedactUrl:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("https://reader:s3cret@feeds.example/rss", "https://reader:***@feeds.example/rss"),
            ("https://ghp_tokenvalue@feeds.example/rss", "https://***@feeds.example/rss"),
            ("https://u:p@ss:w@feeds.example/rss", "https://u:***@feeds.example/rss"),
            ("https://reader:s3cret@[::1/rss", "https://reader:***@[::1/rss"),
            (
                "https://feeds.example/rss?page=2&api_key=abc&sig=x%2Fy",
                "https://feeds.example/rss?page=2&api_key=***&sig=***",
            ),
            (
                "https://feeds.example/rss?X-Amz-Signature=abc&X-Amz-Credential=c",
                "https://feeds.example/rss?X-Amz-Signature=***&X-Amz-Credential=***",
            ),
            ("https://feeds.example/rss?access%5Ftoken=abc", "https://feeds.example/rss?access%5Ftoken=***"),
            ("https://feeds.example/cb#access_token=abc&state=1", "https://feeds.example/cb#access_token=***&state=1"),
            ("https://feeds.example/rss?monkey=1&key=2", "https://feeds.example/rss?monkey=1&key=***"),
            ("/srv/feeds/local.xml", "/srv/feeds/local.xml"),
        ],
    )
    def test_any_url(self, url: str, shown: str) -> None:
        """Userinfo and secret-named query parameters are masked in any URL, even one that does not parse."""
        assert redact_url(url) == shown

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("https://hooks.slack.com/services/T0FEED/B0WATCH/xyz", "https://hooks.slack.com/***"),
            ("https://ops.example:8443/hook?token=1", "https://ops.example:8443/***"),
            ("https://user:pw@ops.example/", "https://ops.example"),
            ("http://[::1]:9000/a", "http://[::1]:9000/***"),
        ],
    )
    def test_secret_url_keeps_origin_only(self, url: str, shown: str) -> None:
        """A URL given as a secret shows its origin and nothing after the host."""
        assert redact_url(Secret(url)) == shown

    def test_link_url_drops_userinfo(self) -> None:
        """A link built from a feed URL carries no credentials at all."""
        assert link_url("https://reader:pw@feeds.example/rss?token=t") == "https://feeds.example/rss?token=***"


class TestRestore:
    @pytest.mark.parametrize(
        ("stored", "source", "restored"),
        [
            (
                "https://u:***@a.example/new?key=***",
                "https://u:pw@a.example/old?key=k1",
                "https://u:pw@a.example/new?key=k1",
            ),
            ("https://u:***@b.example/new", "https://u:pw@a.example/old", None),
            ("https://a.example/new?token=***", "https://a.example/old", None),
            ("https://a.example/new?page=2", "https://u:pw@a.example/old", "https://a.example/new?page=2"),
        ],
        ids=["same-host", "other-host", "unknown-param", "nothing-masked"],
    )
    def test_stored_redirect_target(self, stored: str, source: str, restored: str | None) -> None:
        """A redacted redirect target gets its credentials back only from the configured URL of the same host."""
        assert restore_secrets(stored, source) == restored


class TestRedactText:
    def test_echoed_path_of_a_secret_url(self) -> None:
        """A receiver echoing the secret URL's path, plain or percent-encoded, shows none of its segments."""
        url = Secret(f"https://hooks.slack.com/services/T0FEED/B0WATCH/{SLACK_TOKEN}?x-token={HOOK_TOKEN}")
        echo = (
            f"Cannot POST /services/T0FEED/B0WATCH/{SLACK_TOKEN} "
            f"({quote('/services/T0FEED/B0WATCH/' + SLACK_TOKEN, safe='')}); token {SLACK_TOKEN}; "
            f"B0WATCH unknown; query x-token={HOOK_TOKEN}"
        )
        shown = redact_text(echo, [url])
        for secret in (SLACK_TOKEN, "T0FEED", "B0WATCH", HOOK_TOKEN):
            assert secret not in shown
        assert shown.startswith("Cannot POST /")

    def test_urls_inside_text(self) -> None:
        """URLs in free text lose their passwords and secret parameters; the rest of the text stays."""
        text = "GET https://reader:pw@feeds.example/rss?token=abc failed: 500"
        assert redact_text(text) == "GET https://reader:***@feeds.example/rss?token=*** failed: 500"

    def test_bearer_secret(self) -> None:
        """A header secret is hidden whole and by its token alone."""
        shown = redact_text(
            "got Bearer hdr-token-never-shown; hdr-token-never-shown", [Secret("Bearer hdr-token-never-shown")]
        )
        assert "hdr-token-never-shown" not in shown


# --- every output boundary, end to end --------------------------------------------------------

RULES = """
[rule.fighting]
threshold = 1.0
[rule.fighting.groups.places]
terms = ["Martuni"]
"""

FEED = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    "<item><guid isPermaLink='false'>m1</guid><title>Shelling near Martuni</title>"
    "<link>https://news.example.org/m1</link><description>Martuni</description></item>"
    "</channel></rss>"
)


def echo(request: Request) -> Response:
    """A receiver that echoes the path it was posted to, plain and percent-encoded."""
    return Response(f"Cannot POST {request.full_path} ({quote(request.path, safe='')})", status=404)


def feedwatch(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60)


class TestBoundaries:
    def test_no_secret_reaches_any_output(self, tmp_path: Path, httpserver: HTTPServer) -> None:
        """Echoing receivers and credentialed feed URLs leak nothing into logs, status, feeds, alerts or the DB."""
        httpserver.expect_request("/feed.xml").respond_with_data(FEED, content_type="application/rss+xml")
        httpserver.expect_request("/broken.xml").respond_with_data("down", status=500)
        httpserver.expect_request("/services/T0FEED/B0WATCH/" + SLACK_TOKEN, method="POST").respond_with_handler(echo)
        httpserver.expect_request("/hooks/" + HOOK_TOKEN, method="POST").respond_with_handler(echo)
        base = f"http://reader:{FEED_PASSWORD}@127.0.0.1:{httpserver.port}"
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "r.toml").write_text(RULES)
        (tmp_path / "config.toml").write_text(
            '[alerts]\ndefault_channels = ["slack", "hook"]\nops_channels = ["console", "slack"]\n'
            'outbox_wait = "1s"\n'
            "[polling]\nfail_alert_after = 1\n"
            '[channels.console]\ntype = "console"\n'
            '[channels.slack]\ntype = "slack"\nwebhook_url_env = "SLACK_URL"\n'
            '[channels.hook]\ntype = "webhook"\nurl_env = "HOOK_URL"\n'
            f'[[feeds]]\nname = "wire"\nurl = "{base}/feed.xml?api_key={FEED_KEY}&page=1"\nbackfill = "all"\n'
            f'[[feeds]]\nname = "broken"\nurl = "{base}/broken.xml?token={BROKEN_TOKEN}"\n'
        )
        env = cli_env(
            SLACK_URL=httpserver.url_for(f"/services/T0FEED/B0WATCH/{SLACK_TOKEN}"),
            HOOK_URL=httpserver.url_for(f"/hooks/{HOOK_TOKEN}?x-token={HOOK_TOKEN}"),
        )
        outputs = [feedwatch(tmp_path, env, "--log-level", "debug", "run", "--once")]
        assert "Cannot POST" in outputs[0].stderr  # the echo itself is shown, redacted
        for args in (
            ("status",),
            ("status", "--json"),
            ("feeds", "list"),
            ("alerts", "list"),
            ("alerts", "list", "--json"),
            ("send-test", "slack"),
            ("send-test", "hook"),
        ):
            outputs.append(feedwatch(tmp_path, env, *args))
        alert_ids = [r[0] for r in sqlite3.connect(tmp_path / "var" / "feedwatch.db").execute("SELECT id FROM alerts")]
        assert len(alert_ids) >= 2  # the item's alert and the broken feed's operator alert
        outputs += [feedwatch(tmp_path, env, "alerts", "show", a) for a in alert_ids]
        outputs += [feedwatch(tmp_path, env, "alerts", "show", a, "--json") for a in alert_ids]
        shown = "\n".join(o.stdout + o.stderr for o in outputs)
        stored = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("feedwatch.db*"))
        for secret in SECRETS:
            assert secret not in shown, secret
            assert secret.encode() not in stored, secret
        assert "reader:***@127.0.0.1" in shown  # the feed URL is still recognisable

    def test_command_errors_are_redacted(self, tmp_path: Path) -> None:
        """A failing `score URL` names the URL without its password or token."""
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "r.toml").write_text(RULES)
        (tmp_path / "config.toml").write_text("")
        url = f"http://reader:{FEED_PASSWORD}@127.0.0.1:1/feed.xml?token={BROKEN_TOKEN}"
        out = feedwatch(tmp_path, cli_env(), "score", url)
        assert out.returncode != 0
        assert "reader:***@127.0.0.1:1" in out.stderr
        assert FEED_PASSWORD not in out.stderr + out.stdout
        assert BROKEN_TOKEN not in out.stderr + out.stdout
