"""What only the Apprise channel does: several URLs, mention-safe text, length limits, config (json:// on 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.config.load import load_config
from daemon.errors import ConfigError, TransientDeliveryError
from daemon.notify.apprise_channel import AppriseChannel, AppriseSettings, classify, mention_safe
from daemon.notify.registry import build_channel
from daemon.util.secret import Secret
from tests.notify.test_channels_contract import make_alert


class Receiver:
    def __init__(self, server: HTTPServer, path: str) -> None:
        self.status = 200
        self.bodies: list[dict[str, str]] = []
        server.expect_request(path, method="POST").respond_with_handler(self.handle)
        self.url = f"json://127.0.0.1:{server.port}{path}"

    def handle(self, request: Request) -> Response:
        if self.status != 200:
            return Response("down", status=self.status)
        self.bodies.append(json.loads(request.get_data()))
        return Response("ok")


class TestAppriseChannel:
    async def test_retry_skips_urls_that_already_have_it(self, httpserver: HTTPServer) -> None:
        """With two URLs and one failing, the retry sends only to the one that failed."""
        first, second = Receiver(httpserver, "/a"), Receiver(httpserver, "/b")
        second.status = 503
        channel = AppriseChannel("chat", AppriseSettings(urls=Secret(f"{first.url}, {second.url}"), timeout=5.0))
        with pytest.raises(TransientDeliveryError, match="HTTP 503"):
            await channel.send(make_alert("r1"))
        second.status = 200
        await channel.send(make_alert("r1"))
        assert (len(first.bodies), len(second.bodies)) == (1, 1)

    async def test_mentions_defused_and_length_capped(self, httpserver: HTTPServer) -> None:
        """@everyone in a title pings no one; a long snippet is cut to max_length with an ellipsis."""
        hook = Receiver(httpserver, "/c")
        channel = AppriseChannel("chat", AppriseSettings(urls=Secret(hook.url), max_length=300))
        await channel.send(make_alert(title="@everyone shelling near Martuni", snippet="x " * 2000))
        [body] = hook.bodies
        assert "@everyone" not in body["title"] + body["message"]
        assert "@\u2060everyone" in body["title"]
        assert len(body["message"]) <= 300
        assert body["message"].rstrip().endswith("…")

    def test_unknown_scheme_is_a_config_error(self) -> None:
        """A URL Apprise does not know is refused when the channel is built, naming the entry."""
        with pytest.raises(ConfigError, match="entry 2"):
            AppriseChannel("chat", AppriseSettings(urls=Secret("json://127.0.0.1/x nosuchservice://token")))
        with pytest.raises(ValueError, match="entry 1"):
            AppriseSettings(urls=Secret("not a url"))

    def test_classification_from_apprise_log(self) -> None:
        """Apprise's log lines decide: 5xx/429 and connection errors transient, other 4xx permanent."""
        kinds = {
            "Failed to send JSON POST notification: Bad Request, error=400.": "Permanent",
            "Failed to send JSON POST notification: error=429.": "Transient",
            "Failed to send Telegram notification: Internal Server Error - error=500.": "Transient",
            "Socket Exception: Read timed out. (read timeout=0.3)": "Transient",
            "A Connection error occurred sending JSON notification to 127.0.0.1.": "Transient",
        }
        for line, kind in kinds.items():
            assert type(classify([line], "json://127.0.0.1", 0.3, "c", "a")).__name__.startswith(kind), line

    def test_mention_safe(self) -> None:
        """Only an @ starting a word is changed; e-mail addresses keep reading the same."""
        assert mention_safe("@here and a@b.org") == "@\u2060here and a@\u2060b.org"


class TestConfig:
    def test_urls_from_the_environment(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """type = "apprise" reads urls_env like any secret and builds through the registry."""
        monkeypatch.setenv("FW_APPRISE", "json://127.0.0.1:9/hook ntfy://127.0.0.1:9/topic")
        (tmp_path / "config.toml").write_text('[channels.chat]\ntype = "apprise"\nurls_env = "FW_APPRISE"\n')
        config = load_config(tmp_path / "config.toml")
        channel = build_channel("chat", "apprise", config.channels["chat"].settings, http=None)  # type: ignore[arg-type]
        assert isinstance(channel, AppriseChannel)
        assert "127.0.0.1" in channel.target

    def test_missing_urls(self, tmp_path: Path) -> None:
        """Without urls (or urls_env/_file/_credential) the config error names the key."""
        (tmp_path / "config.toml").write_text('[channels.chat]\ntype = "apprise"\n')
        with pytest.raises(ConfigError, match="urls"):
            load_config(tmp_path / "config.toml")
