"""`alerts list|show|resend`, `outbox retry` and `send-test` as subprocesses against real servers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, REPO, cli_env
from tests.kit.smtp import free_port, smtp_sink


def feedwatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    for folder in ("rules", "seeds"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    assert feedwatch(tmp_path, "run", "--once").returncode == 0
    return tmp_path


class TestAlertHistory:
    def test_list_show_resend(self, demo: Path) -> None:
        """list shows delivered alerts; show explains one; resend queues it again under the same id."""
        listed = json.loads(feedwatch(demo, "alerts", "list", "--json").stdout)
        assert listed
        assert all(d["state"] == "delivered" for a in listed for d in a["deliveries"])
        alert_id = listed[0]["alert"]["alert_id"]

        shown = feedwatch(demo, "alerts", "show", alert_id)
        assert shown.returncode == 0
        assert "hit " in shown.stdout
        assert "console: delivered" in shown.stdout

        assert feedwatch(demo, "alerts", "resend", alert_id).returncode == 0
        again = json.loads(feedwatch(demo, "alerts", "show", alert_id, "--json").stdout)
        assert again["deliveries"][0]["state"] == "pending"
        rerun = feedwatch(demo, "run", "--once")
        assert rerun.returncode == 0
        assert alert_id in rerun.stdout  # delivered again, same idempotency key

    def test_resend_to_unknown_channel(self, demo: Path) -> None:
        """resend --channel with a channel that is not configured exits 2 listing the channels; nothing queued."""
        alert_id = json.loads(feedwatch(demo, "alerts", "list", "--json").stdout)[0]["alert"]["alert_id"]
        out = feedwatch(demo, "alerts", "resend", alert_id, "--channel", "slak")
        assert out.returncode == 2
        assert "no channel 'slak' (configured: console)" in out.stderr
        shown = json.loads(feedwatch(demo, "alerts", "show", alert_id, "--json").stdout)
        assert all(d["state"] == "delivered" for d in shown["deliveries"])

    def test_prefix_and_readable_hits(self, demo: Path) -> None:
        """resend takes the unique prefix show takes; show names each hit by the alternative that matched."""
        alert_id = json.loads(feedwatch(demo, "alerts", "list", "--json", "-n", "1").stdout)[0]["alert"]["alert_id"]
        shown = feedwatch(demo, "alerts", "show", alert_id[:9])
        hits = [line for line in shown.stdout.splitlines() if line.lstrip().startswith("hit ")]
        assert hits
        assert all("|" not in line and len(line) < 160 for line in hits), hits
        resent = feedwatch(demo, "alerts", "resend", alert_id[:9])
        assert resent.returncode == 0, resent.stderr
        assert alert_id in resent.stdout
        assert "or the next `feedwatch run --once`" in resent.stdout  # a demo user has no daemon running
        again = json.loads(feedwatch(demo, "alerts", "show", alert_id, "--json").stdout)
        assert again["deliveries"][0]["state"] == "pending"

    def test_show_unknown(self, demo: Path) -> None:
        """An unknown id is exit 2 with a clear message."""
        out = feedwatch(demo, "alerts", "show", "fw-nope")
        assert out.returncode == 2
        assert "no alert 'fw-nope'" in out.stderr


def mail_config(folder: Path, port: int) -> None:
    (folder / "config.toml").write_text(
        "[channels.desk]\n"
        'type = "email"\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\nfrom = "feedwatch@example.org"\nto = ["desk@example.org"]\n'
        'timeout = "3s"\n'
    )


class TestSendTest:
    def test_delivers_to_a_real_smtp_server(self, tmp_path: Path) -> None:
        """send-test sends one sample message through the channel and says so."""
        with smtp_sink() as sink:
            mail_config(tmp_path, sink.port)
            out = feedwatch(tmp_path, "send-test", "desk")
            assert out.returncode == 0, out.stderr
            messages = sink.wait_for(1)
        assert len(messages) == 1
        assert "test alert" in str(messages[0]["Subject"])

    def test_reports_the_exact_failure(self, tmp_path: Path) -> None:
        """With nothing listening, send-test fails with exit 1 and names the temporary failure."""
        mail_config(tmp_path, free_port())
        out = feedwatch(tmp_path, "send-test", "desk")
        assert out.returncode == 1
        assert "send-test to desk failed (temporary)" in out.stderr

    def test_unknown_channel(self, tmp_path: Path) -> None:
        """An unknown channel name is exit 2 listing the configured ones."""
        mail_config(tmp_path, free_port())
        out = feedwatch(tmp_path, "send-test", "pager")
        assert out.returncode == 2
        assert "configured: console, desk" in out.stderr


class TestOutboxRetry:
    def test_dead_letters_requeued(self, demo: Path) -> None:
        """outbox retry moves dead letters back to pending (none here: reports zero)."""
        out = feedwatch(demo, "outbox", "retry")
        assert out.returncode == 0
        assert "0 dead letter(s) queued again" in out.stdout
