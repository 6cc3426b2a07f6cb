"""What readers notice: critical alerts during a storm, complete lists, what an update changed, clean subjects."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.alerting.policy import group_alert
from daemon.config.load import load_config
from daemon.intake.parse import parse_feed
from daemon.models import Alert, AlertKind, Severity
from daemon.render import email_subject, render_html, render_text, slack_payload
from daemon.service.app import Service
from daemon.service.systemd import Notifier
from tests.conftest import CLI, cli_env

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TOWNS = [f"Town{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(200)]


def entry(n: int, severity: Severity = Severity.WARNING) -> Alert:
    return Alert(
        alert_id=f"e-{n}",
        kind=AlertKind.NEW,
        rule_id="shelling",
        severity=severity,
        score=3.0,
        title=f"Shelling near {TOWNS[n]}",
        link=f"https://news.example.org/{n}",
        feed="wire",
        created_at=NOW,
        story_id=str(n),
    )


class TestStormCritical:
    async def test_critical_goes_out_at_once_during_a_storm(self, tmp_path: Path, httpserver: HTTPServer) -> None:
        """With the storm limit reached, a critical alert is sent on its own; only lower ones are grouped."""
        bodies: list[dict[str, object]] = []

        def handle(request: Request) -> Response:
            bodies.append(json.loads(request.get_data()))
            return Response("ok")

        httpserver.expect_request("/hook", method="POST").respond_with_handler(handle)
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "r.toml").write_text(
            "[rule.shelling]\nthreshold = 1.0\nseverity = { warning = 1.0, critical = 5.0 }\n"
            '[rule.shelling.groups.g]\nterms = ["shelling"]\n'
            '[rule.shelling.groups.big]\nweight = 5.0\nterms = ["massacre"]\n'
        )
        items = "".join(
            f"<item><guid>s-{i}</guid><title>Shelling near {TOWNS[i]}{' massacre' if i == 7 else ''}</title>"
            f"<link>https://news.example.org/{i}</link></item>"
            for i in range(10)
        )
        (tmp_path / "feed.xml").write_text(f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>')
        (tmp_path / "config.toml").write_text(
            '[alerts]\ndefault_channels = ["hook"]\nstorm_limit = 3\nstorm_window = "10m"\n'
            f'[channels.hook]\ntype = "webhook"\nurl = "{httpserver.url_for("/hook")}"\n'
            '[[feeds]]\nurl = "feed.xml"\nbackfill = "all"\n'
        )
        assert await Service(load_config(tmp_path / "config.toml"), notifier=Notifier(None)).run_once() == 0
        alerts = [b["alert"] for b in bodies]  # type: ignore[index]
        critical = [a for a in alerts if a["kind"] == "new" and a["severity"] == "critical"]
        assert [a["title"] for a in critical] == [f"Shelling near {TOWNS[7]} massacre"]
        [storm] = [a for a in alerts if a["kind"] == "storm"]
        assert all(e["severity"] != "critical" for e in storm["entries"])
        assert len(storm["entries"]) == 10 - 3 - 1


class TestCompleteLists:
    def test_storm_mail_lists_every_entry(self) -> None:
        """A storm of 150 items lists all 150 in the text and HTML mail, with no "… and N more"."""
        storm = group_alert(
            AlertKind.STORM, [entry(n) for n in range(150)], channel="c", rule_id="shelling", window=600, now=NOW
        )
        text, html = render_text(storm), render_html(storm)
        for n in range(150):
            assert f"Shelling near {TOWNS[n]} " in text
            assert f'news.example.org/{n}"' in html
        assert "more" not in text.split("\n", 3)[3]

    def test_digest_mail_lists_every_story(self) -> None:
        """A digest of 120 stories lists every one of them."""
        digest = group_alert(
            AlertKind.DIGEST, [entry(n) for n in range(120)], channel="c", rule_id="", window=3600, now=NOW
        )
        text = render_text(digest)
        assert all(f"Shelling near {TOWNS[n]} " in text for n in range(120))
        assert "more stories" not in text


class TestSubjects:
    def test_digest_subject_says_it_once(self) -> None:
        """The digest subject names the count once: no "digest: 3 alerts · Digest: 3 alerts"."""
        digest = group_alert(
            AlertKind.DIGEST, [entry(n) for n in range(3)], channel="c", rule_id="", window=3600, now=NOW
        )
        subject = email_subject(digest)
        assert subject.lower().count("digest") == 1
        assert subject.count("3 alerts") == 1


class TestUpdates:
    def test_update_says_what_changed(self) -> None:
        """An update shows why it was sent, e.g. "severity rose from info to critical", in mail and Slack."""
        update = replace(
            entry(1, Severity.CRITICAL),
            kind=AlertKind.UPDATE,
            thread_id="e-0",
            change="severity rose from info to critical",
        )
        assert "severity rose from info to critical" in render_text(update)
        assert "severity rose from info to critical" in render_html(update)
        assert "severity rose from info to critical" in json.dumps(slack_payload(update))

    async def test_policy_records_the_change(self, tmp_path: Path, httpserver: HTTPServer) -> None:
        """The update alert produced by a severity rise carries the reason end to end."""
        bodies: list[dict[str, object]] = []

        def handle(request: Request) -> Response:
            bodies.append(json.loads(request.get_data()))
            return Response("ok")

        httpserver.expect_request("/hook", method="POST").respond_with_handler(handle)
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "r.toml").write_text(
            "[rule.r]\nthreshold = 1.0\nseverity = { warning = 1.0, critical = 5.0 }\n"
            '[rule.r.groups.g]\nterms = ["shelling"]\n[rule.r.groups.big]\nweight = 5.0\nterms = ["massacre"]\n'
        )
        config = tmp_path / "config.toml"
        config.write_text(
            '[alerts]\ndefault_channels = ["hook"]\n'
            f'[channels.hook]\ntype = "webhook"\nurl = "{httpserver.url_for("/hook")}"\n'
            '[[feeds]]\nurl = "feed.xml"\nbackfill = "all"\n'
        )
        for title in ("Shelling near Martuni", "Shelling near Martuni: massacre reported"):
            (tmp_path / "feed.xml").write_text(
                f'<?xml version="1.0"?><rss version="2.0"><channel><item><guid>a</guid><title>{title}</title>'
                "<link>https://news.example.org/a</link></item></channel></rss>"
            )
            assert await Service(load_config(config), notifier=Notifier(None)).run_once() == 0
        update = bodies[-1]["alert"]  # type: ignore[index]
        assert update["kind"] == "update"
        assert update["change"] == "severity rose from warning to critical"


class TestTerminalOutput:
    def test_alerts_list_strips_bidi_controls(self, tmp_path: Path) -> None:
        """A title with bidi overrides is printed by alerts list and status without them."""
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "r.toml").write_text(
            '[rule.r]\nthreshold = 1.0\n[rule.r.groups.g]\nterms = ["shelling"]\n'
        )
        (tmp_path / "feed.xml").write_text(
            '<?xml version="1.0"?><rss version="2.0"><channel><item><guid>a</guid>'
            "<title>Shelling \u202egnp.exe\u202c near Martuni</title></item></channel></rss>",
            encoding="utf-8",
        )
        (tmp_path / "config.toml").write_text('[[feeds]]\nurl = "feed.xml"\nbackfill = "all"\n')
        env = cli_env()
        subprocess.run([*CLI, "run", "--once"], cwd=tmp_path, env=env, capture_output=True, check=False, timeout=60)
        for args in (["alerts", "list"], ["status"]):
            out = subprocess.run(
                [*CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=60
            )
            assert "\u202e" not in out.stdout
            assert "\u202c" not in out.stdout
        listed = subprocess.run(
            [*CLI, "alerts", "list"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert "gnp.exe" in listed.stdout


class TestSlackMentions:
    def test_raw_channel_mention_is_removed_escaped_one_shown(self) -> None:
        """As docs/channels.md says: a raw <!channel> in feed text is markup and is removed; an escaped one shows."""
        body = (
            b'<?xml version="1.0"?><rss version="2.0"><channel><item><guid>g</guid>'
            b"<title>&lt;!channel&gt; shelling &amp;lt;!here&amp;gt; now</title></item></channel></rss>"
        )
        item = parse_feed(body, feed="f", url="https://f.example/").items[0]
        assert item.title == "shelling <!here> now"
        text = json.dumps(slack_payload(replace(entry(0), title=item.title)))
        assert "&lt;!here&gt;" in text
        assert "<!here>" not in text
