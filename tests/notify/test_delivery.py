"""Delivery end to end with a real SMTP server on 127.0.0.1: threading of updates, outages, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config.load import load_config
from daemon.service.app import Service
from daemon.service.systemd import Notifier
from daemon.store.sqlite import Store
from tests.kit.smtp import SmtpSink, free_port

RULES = """
[rule.fighting]
threshold = 2.0
severity = { warning = 2.0, critical = 10.0 }
require = ["places", "escalation"]
[rule.fighting.groups.places]
terms = ["Martuni", "Talish", "Stepanakert"]
[rule.fighting.groups.escalation]
weight = 2.0
terms = ["shelling", "artillery", "drone*", "rocket*"]
"""


def item(guid: str, title: str, summary: str = "") -> str:
    return (
        f"<item><guid isPermaLink='false'>{guid}</guid><title>{title}</title>"
        f"<link>https://news.example.org/{guid}</link><description>{summary}</description></item>"
    )


def write_feed(path: Path, *items: str) -> None:
    path.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{"".join(items)}</channel></rss>'
    )


def setup(tmp_path: Path, port: int) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.toml").write_text(RULES)
    config = tmp_path / "config.toml"
    config.write_text(
        '[alerts]\ndefault_channels = ["desk"]\noutbox_wait = "2s"\nretry_base = "1s"\n'
        f'[channels.desk]\ntype = "email"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from = "feedwatch@example.org"\nto = ["desk@example.org"]\ntimeout = "3s"\n'
        '[[feeds]]\nurl = "feed.xml"\nbackfill = "all"\n'
    )
    return config


async def run_once(config: Path) -> int:
    """How many alerts one cycle left queued."""
    return await Service(load_config(config), notifier=Notifier(None)).run_once()


class TestThreading:
    async def test_severity_rise_is_one_threaded_update(self, tmp_path: Path) -> None:
        """An edited item that now scores critical sends one update replying to the first alert's mail."""
        sink = SmtpSink()
        sink.start()
        try:
            config = setup(tmp_path, sink.port)
            write_feed(tmp_path / "feed.xml", item("a1", "Shelling reported in Martuni"))
            assert await run_once(config) == 0
            write_feed(
                tmp_path / "feed.xml",
                item("a1", "Shelling and artillery fire in Martuni", "Drones and rockets hit Martuni overnight."),
            )
            assert await run_once(config) == 0
            assert await run_once(config) == 0  # nothing new: no third mail
            messages = sink.wait_for(2)
        finally:
            sink.stop()
        assert len(messages) == 2
        first, update = messages
        assert "WARNING" in str(first["Subject"]).upper()
        assert "CRITICAL" in str(update["Subject"]).upper()
        assert update["In-Reply-To"] == first["Message-ID"]
        assert first["Message-ID"] in str(update["References"])


class TestOutage:
    @pytest.mark.slow
    async def test_smtp_down_then_back_delivers_each_alert_once(self, tmp_path: Path) -> None:
        """With SMTP refusing, alerts wait in the outbox (exit 3); once it is back each arrives exactly once."""
        port = free_port()
        config = setup(tmp_path, port)
        write_feed(
            tmp_path / "feed.xml",
            item("b1", "Shelling reported in Martuni"),
            item("b2", "Artillery duel near Talish"),
            item("b3", "Drone strike on Stepanakert airport"),
        )
        assert await run_once(config) > 0  # still queued
        store = Store(load_config(config).store.path)
        pending = store.outbox_counts()["pending"]
        store.close()
        assert pending == 3

        sink = SmtpSink(port)
        sink.start()
        try:
            # Retries are scheduled with backoff; a later run delivers once they are due.
            for _ in range(5):
                if await run_once(config) == 0:
                    break
            assert await run_once(config) == 0
            messages = sink.wait_for(3)
        finally:
            sink.stop()
        ids = [m["Message-ID"] for m in messages]
        assert len(ids) == 3
        assert len(set(ids)) == 3
