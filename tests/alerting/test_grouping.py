"""Storm control and digests end to end: real Service, real SQLite, a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.config.load import load_config
from daemon.service.app import Service
from daemon.service.systemd import Notifier

TOWNS = [f"Town{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(40)]


def feed(n: int) -> str:
    items = "".join(
        f"<item><guid>s-{i}</guid><title>Shelling near {TOWNS[i].capitalize()}</title>"
        f"<link>https://news.example.org/{i}</link><description>Shelling reported.</description></item>"
        for i in range(n)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'


def setup(tmp_path: Path, url: str, channel_extra: str, alerts_extra: str = "") -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.toml").write_text(
        '[rule.shelling]\nthreshold = 1.0\n[rule.shelling.groups.g]\nterms = ["shelling"]\n'
    )
    (tmp_path / "feed.xml").write_text(feed(30))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[alerts]\ndefault_channels = ["hook"]\n{alerts_extra}\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{url}"\n{channel_extra}\n'
        '[[feeds]]\nurl = "feed.xml"\nbackfill = "all"\n'
    )
    return config


def receiver(server: HTTPServer) -> list[dict[str, object]]:
    bodies: list[dict[str, object]] = []

    def handle(request: Request) -> Response:
        bodies.append(json.loads(request.get_data()))
        return Response("ok", status=200)

    server.expect_request("/hook", method="POST").respond_with_handler(handle)
    return bodies


class TestStorm:
    async def test_storm_is_limited_plus_one_grouped(self, tmp_path: Path, httpserver: HTTPServer) -> None:
        """30 matching stories with storm_limit 5 yield 5 alerts and one grouped message naming the other 25."""
        bodies = receiver(httpserver)
        config = setup(tmp_path, httpserver.url_for("/hook"), "", 'storm_limit = 5\nstorm_window = "10m"')
        assert await Service(load_config(config), notifier=Notifier(None)).run_once() == 0
        kinds = [b["alert"]["kind"] for b in bodies]  # type: ignore[index]
        assert kinds.count("new") == 5
        assert kinds.count("storm") == 1
        grouped = next(b["alert"] for b in bodies if b["alert"]["kind"] == "storm")  # type: ignore[index]
        assert len(grouped["entries"]) == 25
        assert grouped["title"] == "25 more items matched shelling in the last 10 min"


class TestDigest:
    @pytest.mark.parametrize("schedule", ["every 1h", "08:00"])
    async def test_digest_channel_gets_one_message(self, tmp_path: Path, httpserver: HTTPServer, schedule: str) -> None:
        """A digest channel receives one summary with every alert of the period, not one message each."""
        bodies = receiver(httpserver)
        config = setup(
            tmp_path,
            httpserver.url_for("/hook"),
            f'mode = "digest"\nschedule = "{schedule}"\ntimezone = "Asia/Baku"',
            "storm_limit = 100",
        )
        assert await Service(load_config(config), notifier=Notifier(None)).run_once() == 0
        assert len(bodies) == 1
        digest = bodies[0]["alert"]  # type: ignore[index]
        assert digest["kind"] == "digest"
        assert len(digest["entries"]) == 30
