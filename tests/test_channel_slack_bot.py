"""Slack through a bot token, against a local fake of the Web API on 127.0.0.1: threads, rate limits, errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.config.load import load_config
from daemon.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from daemon.models import AlertKind
from daemon.notify.registry import build_channel
from daemon.notify.slack import SlackSettings
from daemon.notify.slack_bot import SlackBotChannel
from daemon.service.app import Service
from daemon.service.runtime import StoreThreads
from daemon.service.systemd import Notifier
from daemon.store.async_store import AsyncStore
from daemon.util.secret import Secret
from tests.polling_kit import entry, feed_toml, rss, write_config
from tests.test_channels_contract import make_alert

TOKEN = "xoxb-1111-never-shown"


class FakeSlack:
    """chat.postMessage as Slack answers it: JSON with ok/ts, or an error, or a 429 with Retry-After."""

    def __init__(self, server: HTTPServer) -> None:
        self.posts: list[dict[str, object]] = []
        self.answer: tuple[int, dict[str, object], dict[str, str]] | None = None
        server.expect_request("/api/chat.postMessage", method="POST").respond_with_handler(self.handle)
        self.api = server.url_for("/api")

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response(json.dumps({"ok": False, "error": "not_authed"}), content_type="application/json")
        if self.answer is not None:
            status, doc, headers = self.answer
            return Response(json.dumps(doc), status=status, headers=headers, content_type="application/json")
        post = json.loads(request.get_data())
        self.posts.append(post)
        ts = f"1714564800.{len(self.posts):06d}"
        return Response(json.dumps({"ok": True, "channel": "C0FEED", "ts": ts}), content_type="application/json")


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    return FakeSlack(httpserver)


@pytest.fixture
async def client() -> httpx.AsyncClient:
    async with httpx.AsyncClient(trust_env=False) as c:
        yield c  # type: ignore[misc]


def bot(slack: FakeSlack, client: httpx.AsyncClient) -> SlackBotChannel:
    settings = SlackSettings(bot_token=Secret(TOKEN), channel="#caucasus", api_url=slack.api, min_interval=0.0)
    return SlackBotChannel("slack-bot", settings, client)


class TestThreads:
    async def test_update_replies_in_thread_after_a_restart(
        self, slack: FakeSlack, client: httpx.AsyncClient, tmp_path: Path
    ) -> None:
        """The first alert's ts is kept in the database; an update, even from a new process, replies to it."""
        store = AsyncStore(tmp_path / "fw.db")
        await store.open()
        try:
            first = bot(slack, client)
            first.use_threads(StoreThreads(store))
            await first.send(make_alert("first-1"))
            restarted = bot(slack, client)
            restarted.use_threads(StoreThreads(store))
            await restarted.send(make_alert("upd-2", kind=AlertKind.UPDATE, thread_id="first-1"))
            await restarted.send(make_alert("upd-2", kind=AlertKind.UPDATE, thread_id="first-1"))  # a re-send
        finally:
            await store.aclose()
        top, reply = slack.posts
        assert top["channel"] == "#caucasus"
        assert "thread_ts" not in top
        assert (reply["channel"], reply["thread_ts"]) == ("C0FEED", "1714564800.000001")
        with sqlite3.connect(tmp_path / "fw.db") as db:
            rows = db.execute("SELECT thread_id, slack_channel, ts FROM slack_threads ORDER BY ts").fetchall()
        assert rows == [("first-1", "C0FEED", "1714564800.000001"), ("upd-2", "C0FEED", "1714564800.000002")]

    async def test_update_without_a_posted_first_starts_the_thread(
        self, slack: FakeSlack, client: httpx.AsyncClient
    ) -> None:
        """When the story's first alert was never posted here (silenced), the update starts the thread."""
        channel = bot(slack, client)
        await channel.send(make_alert("upd-2", kind=AlertKind.UPDATE, thread_id="silenced-1"))
        await channel.send(make_alert("upd-3", kind=AlertKind.UPDATE, thread_id="silenced-1"))
        assert "thread_ts" not in slack.posts[0]
        assert slack.posts[1]["thread_ts"] == "1714564800.000001"


class TestLimitsAndErrors:
    async def test_429_holds_every_post_for_retry_after(self, slack: FakeSlack, client: httpx.AsyncClient) -> None:
        """A 429 gives retry_after from Retry-After, and the next post within it is held without a request."""
        channel = bot(slack, client)
        slack.answer = (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
        with pytest.raises(TransientDeliveryError) as info:
            await channel.send(make_alert("a"))
        assert info.value.retry_after == 30.0
        slack.answer = None
        with pytest.raises(TransientDeliveryError, match="holding posts") as held:
            await channel.send(make_alert("b"))
        assert held.value.retry_after is not None
        assert 25 < held.value.retry_after <= 30
        assert slack.posts == []

    @pytest.mark.parametrize(
        ("error", "kind"),
        [
            ("channel_not_found", PermanentDeliveryError),
            ("not_in_channel", PermanentDeliveryError),
            ("invalid_auth", PermanentDeliveryError),
            ("internal_error", TransientDeliveryError),
            ("service_unavailable", TransientDeliveryError),
        ],
    )
    async def test_web_api_errors(
        self, slack: FakeSlack, client: httpx.AsyncClient, error: str, kind: type[Exception]
    ) -> None:
        """{"ok": false} errors are classified by name and quoted in the error; the token never is."""
        slack.answer = (200, {"ok": False, "error": error}, {})
        with pytest.raises(kind) as info:
            await bot(slack, client).send(make_alert())
        assert error in str(info.value)
        assert TOKEN not in str(info.value)
        assert TOKEN not in repr(bot(slack, client))

    async def test_posts_are_paced(self, slack: FakeSlack, client: httpx.AsyncClient) -> None:
        """Posts to one channel are at least min_interval apart."""
        import time

        settings = SlackSettings(bot_token=Secret(TOKEN), channel="#c", api_url=slack.api, min_interval=0.3)
        channel = SlackBotChannel("paced", settings, client)
        started = time.monotonic()
        for n in range(3):
            await channel.send(make_alert(f"p{n}"))
        assert time.monotonic() - started >= 0.6


class TestConfig:
    def test_bot_token_settings(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """bot_token_env with channel builds the Web API channel; webhook_url and bot_token together do not load."""
        monkeypatch.setenv("FW_SLACK_BOT", TOKEN)
        (tmp_path / "config.toml").write_text(
            '[channels.s]\ntype = "slack"\nbot_token_env = "FW_SLACK_BOT"\nchannel = "#caucasus"\n'
        )
        cfg = load_config(tmp_path / "config.toml")
        channel = build_channel("s", "slack", cfg.channels["s"].settings, http=None)  # type: ignore[arg-type]
        assert isinstance(channel, SlackBotChannel)
        for bad in (
            'bot_token_env = "FW_SLACK_BOT"\n',  # no channel
            'bot_token_env = "FW_SLACK_BOT"\nchannel = "#c"\nwebhook_url = "https://hooks.slack.com/services/T/B/x"\n',
        ):
            (tmp_path / "config.toml").write_text(f'[channels.s]\ntype = "slack"\n{bad}')
            with pytest.raises(ConfigError, match=r"channels\.s"):
                load_config(tmp_path / "config.toml")


class TestDaemon:
    async def test_story_update_is_a_thread_reply_end_to_end(self, slack: FakeSlack, tmp_path: Path) -> None:
        """Two runs of the real service: the alert is posted, then its severity rise replies in its thread."""
        feed = tmp_path / "feed.xml"
        feed.write_bytes(rss(entry("a", "Shelling near Martuni", link="https://n.example/a")))
        config = write_config(
            tmp_path, feed_toml("wire", "feed.xml", backfill="all"), alerts={"default_channels": ["s"]}
        )
        config.write_text(
            config.read_text()
            + f'[channels.s]\ntype = "slack"\nbot_token = "{TOKEN}"\nchannel = "#c"\napi_url = "{slack.api}"\n'
        )
        assert await Service(load_config(config), notifier=Notifier(None)).run_once() == 0
        feed.write_bytes(rss(entry("a", "Shelling, artillery and drones near Martuni", link="https://n.example/a")))
        assert await Service(load_config(config), notifier=Notifier(None)).run_once() == 0
        first, update = slack.posts
        assert "thread_ts" not in first
        assert update["thread_ts"] == "1714564800.000001"
