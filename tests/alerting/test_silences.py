"""Silences: the pure matching policy, the daemon recording silenced alerts, and `feedwatch silence`."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.alerting.silences import ANY_RULE, OPS_RULE, Silence, find, new_id, validate
from daemon.store.sqlite import Store
from tests.conftest import CLI, cli_env
from tests.kit.feeds import FeedServer
from tests.kit.polling import T0, Daemon, entry, feed_toml, rss, write_config

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def silence(rule: str = "watch", *, hours: float = 1.0, start: datetime = NOW, **extra: str) -> Silence:
    return Silence(
        id=new_id(rule, extra.get("feed"), extra.get("match"), start),
        rule=rule,
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        **extra,  # type: ignore[arg-type]
    )


class TestMatching:
    @pytest.mark.parametrize(
        ("sil", "rule_id", "ops", "feed", "title", "muted"),
        [
            (silence(), "watch", False, "wire", "Shelling", True),
            (silence(), "other", False, "wire", "Shelling", False),
            (silence(ANY_RULE), "other", False, "wire", "Shelling", True),
            (silence(ANY_RULE), "", True, "wire", "Feed wire failing", False),
            (silence(OPS_RULE, feed="wire"), "", True, "wire", "Feed wire failing", True),
            (silence(OPS_RULE, feed="wire"), "", True, "rferl", "Feed rferl failing", False),
            (silence(OPS_RULE, feed="wire"), "watch", False, "wire", "Shelling", False),
            (silence(feed="wire"), "watch", False, "rferl", "Shelling", False),
            (silence(match="grand prix"), "watch", False, "wire", "Baku Grand Prix: shelling of records", True),
            (silence(match="grand prix"), "watch", False, "wire", "Shelling near Martuni", False),
        ],
    )
    def test_table(self, sil: Silence, rule_id: str, ops: bool, feed: str, title: str, muted: bool) -> None:
        """A silence mutes by rule (or every rule, or operator alerts), then by feed and title text."""
        found = find([sil], rule_id=rule_id, ops=ops, feed=feed, title=title, now=NOW + timedelta(minutes=5))
        assert (found is sil) is muted

    def test_only_while_active(self) -> None:
        """Before it starts and from its end on, a silence mutes nothing."""
        sil = silence()
        args = {"rule_id": "watch", "feed": "wire", "title": "x"}
        assert find([sil], now=NOW - timedelta(seconds=1), **args) is None
        assert find([sil], now=NOW, **args) is sil
        assert find([sil], now=NOW + timedelta(hours=1), **args) is None

    def test_longest_wins(self) -> None:
        """Of two matching silences, the one lasting longer is named (it is the one that matters)."""
        short, long = silence(hours=1), silence(ANY_RULE, hours=5)
        assert find([short, long], rule_id="watch", feed="f", title="t", now=NOW) is long

    def test_validation(self) -> None:
        """Empty rules, non-positive durations and --match on ops silences are refused with a reason."""
        assert validate("watch", feed=None, match=None, seconds=60, comment="") == []
        assert validate(" ", feed=None, match=None, seconds=60, comment="")
        assert validate("watch", feed=None, match=None, seconds=0, comment="")
        assert validate(OPS_RULE, feed="wire", match="x", seconds=60, comment="")


def shelling_feed(httpserver: HTTPServer, tmp_path: Path) -> tuple[FeedServer, Path]:
    server = FeedServer(httpserver, body=rss(entry("a1", "Shelling near Martuni", link="https://n.example/a1")))
    return server, write_config(tmp_path, feed_toml("wire", server.url, backfill="all"))


async def outbox(d: Daemon) -> list[tuple[str, str, str]]:
    """(alert kind, severity, delivery state) of every delivery, oldest first."""
    rows = await d.sql(
        "SELECT a.kind, a.severity, o.state FROM outbox o JOIN alerts a ON a.id = o.alert_id ORDER BY o.id"
    )
    names = {1: "info", 2: "warning", 3: "critical"}
    return [(k, names[s], st) for k, s, st in rows]


class TestDaemon:
    async def test_silenced_alert_is_recorded_and_the_end_does_not_flood(
        self, httpserver: HTTPServer, tmp_path: Path
    ) -> None:
        """Silenced alerts (a severity rise too) are recorded, never queued; after the end only a new rise alerts."""
        server, config = shelling_feed(httpserver, tmp_path)
        async with Daemon(config) as d:
            sil = silence(start=T0)
            await d.service.store.call(Store.add_silence, sil, T0)
            await d.poll("wire")
            assert await outbox(d) == [("new", "info", "silenced")]
            [(silence_id, outcome)] = await d.sql("SELECT a.silence_id, m.outcome FROM alerts a JOIN matches m")
            assert (silence_id, outcome) == (sil.id, "silenced")

            d.clock.advance(1800)  # a rise during the silence: silenced as well
            server.body = rss(entry("a1", "Shelling and artillery near Martuni", link="https://n.example/a1"))
            await d.poll("wire")
            assert await outbox(d) == [("new", "info", "silenced"), ("update", "warning", "silenced")]

            d.clock.advance(2 * 3600)  # the silence is over: nothing that was silenced goes out
            server.body = rss(
                entry("a1", "Shelling and artillery near Martuni", link="https://n.example/a1"),
                entry("a2", "Shelling near Martuni", summary="again", link="https://n.example/a1"),
            )
            await d.poll("wire")
            assert [s for _, _, s in await outbox(d)] == ["silenced", "silenced"]

            server.body = rss(entry("a1", "Shelling, artillery and drones near Martuni", link="https://n.example/a1"))
            await d.poll("wire")  # a rise above what was silenced alerts
            assert (await outbox(d))[-1] == ("update", "critical", "pending")

    async def test_ops_alerts_silenced_per_feed(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """A feed's failing notice under an @ops silence for that feed is recorded silenced, not queued."""
        server, config = shelling_feed(httpserver, tmp_path)
        server.status = 500
        async with Daemon(config) as d:
            await d.service.store.call(Store.add_silence, silence(OPS_RULE, start=T0, feed="wire", hours=24), T0)
            for _ in range(6):
                await d.poll("wire")
                d.clock.advance(600)
            assert await d.ops() == ["failing"]
            assert await outbox(d) == [("ops", "warning", "silenced")]


def feedwatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False)


class TestCommand:
    def test_add_list_expire_on_a_fresh_store(self, tmp_path: Path) -> None:
        """`silence add` works before any run, prints only the id; list shows it; expire by prefix ends it."""
        write_config(tmp_path, "")
        added = feedwatch(tmp_path, "silence", "add", "--rule", "watch", "--for", "2h", "--comment", "noisy")
        assert added.returncode == 0, added.stderr
        sil_id = added.stdout.strip()
        assert sil_id.startswith("sil-")
        assert "\n" not in sil_id

        listed = json.loads(feedwatch(tmp_path, "silence", "list", "--json").stdout)
        assert [(s["id"], s["rule"], s["active"], s["comment"]) for s in listed] == [(sil_id, "watch", True, "noisy")]
        status = json.loads(feedwatch(tmp_path, "status", "--json").stdout)
        assert [(s["id"], s["comment"]) for s in status["silences"]] == [(sil_id, "noisy")]
        assert status["outbox"]["silenced"] == 0

        expired = feedwatch(tmp_path, "silence", "expire", sil_id[:8])
        assert expired.returncode == 0, expired.stderr
        assert json.loads(feedwatch(tmp_path, "silence", "list", "--json").stdout) == []
        ended = json.loads(feedwatch(tmp_path, "silence", "list", "--all", "--json").stdout)
        assert [s["active"] for s in ended] == [False]

    def test_unknown_rule_is_warned(self, tmp_path: Path) -> None:
        """A rule id no rule file defines (a typo) is still stored but warned about, naming the rules folder."""
        write_config(tmp_path, "")
        typo = feedwatch(tmp_path, "silence", "add", "--rule", "wacth", "--for", "1h")
        assert typo.returncode == 0, typo.stderr
        assert "warning: no rule 'wacth'" in typo.stderr
        assert str(tmp_path / "rules") in typo.stderr
        for known in ("watch", "*"):
            out = feedwatch(tmp_path, "silence", "add", "--rule", known, "--for", "1h")
            assert "warning" not in out.stderr

    def test_refusals(self, tmp_path: Path) -> None:
        """A bad duration, --ops without --feed and an unknown id are usage errors (exit 2)."""
        write_config(tmp_path, "")
        assert feedwatch(tmp_path, "silence", "add", "--rule", "watch", "--for", "soon").returncode == 2
        assert feedwatch(tmp_path, "silence", "add", "--ops", "--for", "1h").returncode == 2
        missing = feedwatch(tmp_path, "silence", "expire", "sil-nothing")
        assert missing.returncode == 2
        assert "no silence 'sil-nothing'" in missing.stderr
