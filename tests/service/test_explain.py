"""`feedwatch explain`: every rule's verdict and what the alert policy did, for items and alerts."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.alerting.explain import Recorded, not_fired_outcome, verdicts
from daemon.alerting.silences import Silence
from daemon.config.load import load_config
from daemon.models import Hit, Severity
from daemon.rules.matcher import Evaluation
from daemon.service.explain import Explainer
from daemon.store.sqlite import Store
from tests.conftest import CLI, cli_env
from tests.kit.feeds import FeedServer
from tests.kit.polling import T0, Daemon, entry, feed_toml, rss, write_config

HIT = Hit("g", "shelling", "shelling", "title", 0, 8, "Shelling", 2.0)

RULES = """
[rule.watch]
threshold = 3.0
require = ["place"]
severity = { warning = 3.0, critical = 8.0 }
[rule.watch.groups.place]
terms = ["Martuni", "Talish"]
[rule.watch.groups.act]
terms = ["shelling", "artillery", "drones"]
[rule.watch.exclude]
terms = ["recipe"]

[rule.quiet]
threshold = 3.0
channels = ["loud"]
[rule.quiet.groups.g]
weight = 2.0
terms = ["ceasefire"]
"""


def ev(reasons: tuple[str, ...], *, fired: bool = False, vetoes: tuple[Hit, ...] = ()) -> Evaluation:
    return Evaluation("watch", fired, 2.0, Severity.INFO, (HIT,), reasons, vetoes)


class TestVerdicts:
    @pytest.mark.parametrize(
        ("evaluation", "outcome"),
        [
            (ev(("excluded by 'recipe' ('recipe' in title)",), vetoes=(HIT,)), "excluded"),
            (ev(("required group 'place' had no hit",)), "missing_group"),
            (ev(("score 2 below threshold 3",)), "below_threshold"),
            (ev(("no term matched",)), "no_match"),
            (ev(("rule is disabled",)), "disabled"),
            (ev(("feed 'wire' is not in feeds ['rferl']",)), "not_applicable"),
            (ev(("no hits of groups 'a', 'b' within 8 words in one field",)), "not_near"),
        ],
    )
    def test_why_not(self, evaluation: Evaluation, outcome: str) -> None:
        """A rule that did not fire is named by its first reason: excluded, missing group, threshold…"""
        assert not_fired_outcome(evaluation) == outcome

    def test_recorded_decision_wins_and_rule_changes_show(self) -> None:
        """A recorded match shows its outcome; a rule firing only now, or no longer, says so."""
        recorded = {"watch": Recorded(4.0, "warning", "throttled", "already alerted for this story", None, (HIT,))}
        out = verdicts([ev(("score 2 below threshold 3",))], recorded)
        assert out[0]["outcome"] == "throttled"
        assert "would not fire" in out[0]["now"]
        now_fires = verdicts([ev(("score 4 reached threshold 3; severity warning",), fired=True)], {})
        assert now_fires[0]["outcome"] == "fires_now"


def setup(tmp_path: Path, server: FeedServer | str, **feed: str) -> Path:
    url = server if isinstance(server, str) else server.url
    config = write_config(tmp_path, feed_toml("wire", url, **feed), alerts={"storm_limit": 2})
    (tmp_path / "rules" / "watch.toml").write_text(RULES)
    config.write_text(
        config.read_text() + '[channels.console]\ntype = "console"\n[channels.loud]\ntype = "console"\n'
        'min_severity = "critical"\n'
    )
    return config


def outcomes(config: Path) -> dict[str, tuple[str, str]]:
    """Each item's title → (verdict of rule watch, of rule quiet), through the explain collector."""
    cfg = load_config(config)
    store = Store(cfg.store.path, readonly=True)
    try:
        explainer = Explainer(cfg, store)
        out = {}
        for (item_id,) in store.conn.execute("SELECT id FROM items ORDER BY id"):
            [doc] = explainer.explain(str(item_id))
            verdict = {r["rule"]: r["outcome"] for r in doc["rules"]}
            out[doc["item"]["title"]] = (verdict["watch"], verdict["quiet"])
        return out
    finally:
        store.close()


class TestDaemon:
    async def test_every_reason(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """Backfill, alerted, throttled, excluded, missing group, threshold, storm, silenced and floor differ."""
        server = FeedServer(httpserver, body=rss(entry("old", "Shelling near Martuni again")))
        config = setup(tmp_path, server)
        async with Daemon(config) as d:
            await d.poll("wire")  # first poll, no backfill: recorded silently
            d.clock.advance(3600)
            server.body = rss(
                entry("old", "Shelling near Martuni again"),
                entry("a", "Shelling near Talish", link="https://n.example/a"),
                entry("b", "Shelling near Talish overnight", link="https://n.example/a"),
                entry("c", "Martuni recipe: shelling beans", link="https://n.example/c"),
                entry("d", "Shelling and artillery reported", link="https://n.example/d"),
                entry("e", "Martuni quiet", link="https://n.example/e"),
                entry("x", "Artillery fire heard in the hills above Talish", link="https://n.example/x"),
                entry("f", "Drones over Martuni", link="https://n.example/f"),
                entry("g", "Ceasefire talks resume", link="https://n.example/g"),
            )
            await d.poll("wire")
            sil = Silence("sil-1", "watch", T0, T0 + timedelta(days=1), match="duel")
            await d.service.store.call(Store.add_silence, sil, d.clock.now)
            server.body = rss(entry("h", "Martuni artillery duel at dawn", link="https://n.example/h"))
            await d.poll("wire")
        assert outcomes(config) == {
            "Shelling near Martuni again": ("backfill", "no_match"),
            "Shelling near Talish": ("alerted", "no_match"),
            "Shelling near Talish overnight": ("throttled", "no_match"),
            "Martuni recipe: shelling beans": ("excluded", "no_match"),
            "Shelling and artillery reported": ("missing_group", "no_match"),
            "Martuni quiet": ("below_threshold", "no_match"),
            "Artillery fire heard in the hills above Talish": ("alerted", "no_match"),
            "Drones over Martuni": ("storm", "no_match"),
            "Ceasefire talks resume": ("no_match", "severity_floor"),
            "Martuni artillery duel at dawn": ("silenced", "no_match"),
        }


def feedwatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False)


class TestCommand:
    def test_alert_prefix_item_id_and_url(self, tmp_path: Path) -> None:
        """explain takes an alert id prefix, an item id or a URL; text and --json agree on the delivery."""
        feed = tmp_path / "feed.xml"
        feed.write_bytes(rss(entry("a", "Shelling near Talish", link="https://n.example/a")))
        setup(tmp_path, "feed.xml", backfill="all")
        assert feedwatch(tmp_path, "run", "--once").returncode == 0
        [listed] = json.loads(feedwatch(tmp_path, "alerts", "list", "--json").stdout)
        alert_id = listed["alert"]["alert_id"]

        by_alert = json.loads(feedwatch(tmp_path, "explain", alert_id[:9], "--json").stdout)
        by_url = json.loads(feedwatch(tmp_path, "explain", "https://n.example/a", "--json").stdout)
        assert by_alert["item"] == by_url["item"]
        [alert] = by_alert["alerts"]
        assert alert["alert_id"] == alert_id
        assert [(c["channel"], c["state"]) for c in alert["channels"]] == [("console", "delivered")]
        assert [a["outcome"] for a in alert["attempts"]] == ["delivered"]
        assert alert["hits"] == listed["alert"]["hits"]  # one JSON shape for a hit, wherever it is shown

        text = feedwatch(tmp_path, "explain", str(by_alert["item"]["id"]))
        assert text.returncode == 0
        assert "watch: score 4, FIRED warning → alerted" in text.stdout
        assert "channel console: delivered" in text.stdout

        missing = feedwatch(tmp_path, "explain", "fw-nothing")
        assert missing.returncode == 2
