"""/metrics and /healthz from a real `feedwatch run`, and the agreement of status, explain and /metrics."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.config.load import load_config
from daemon.errors import ConfigError
from tests.conftest import REPO, cli_env
from tests.kit.feeds import FeedServer
from tests.kit.process import running_site, write_site
from tests.kit.smtp import free_port


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, also for 4xx/5xx answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy
    try:
        with opener.open(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format (labels in any order), or None."""
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z_:]+)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if found == labels:
            return float(m.group(3))
    return None


class TestConfig:
    def test_off_by_default_and_demo_has_no_table(self, tmp_path: Path) -> None:
        """[metrics] is off unless listen is set; the demo config has no [metrics] table."""
        assert "[metrics]" not in (REPO / "config.toml").read_text()
        (tmp_path / "config.toml").write_text("")
        assert load_config(tmp_path / "config.toml").metrics.listen is None

    @pytest.mark.parametrize("listen", ["9464", "127.0.0.1", "127.0.0.1:0x10", "127.0.0.1:70000"])
    def test_bad_listen(self, tmp_path: Path, listen: str) -> None:
        """A listen address that is not HOST:PORT is a config error naming the key."""
        (tmp_path / "config.toml").write_text(f'[metrics]\nlisten = "{listen}"\n')
        with pytest.raises(ConfigError, match=r"metrics\.listen"):
            load_config(tmp_path / "config.toml")

    def test_prometheus_client_imported_only_when_configured(self) -> None:
        """Without [metrics], building the service does not import prometheus-client."""
        code = (
            "import sys, daemon.service.app, daemon.cli.main\n"
            "from daemon.service.runtime import metrics_for\n"
            "from daemon.config.model import MetricsConfig\n"
            "assert 'prometheus_client' not in sys.modules\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, env=cli_env(), cwd=REPO)


@pytest.fixture
def site(tmp_path: Path, httpserver: HTTPServer) -> tuple[Path, FeedServer, int]:
    """A feed with one item for rule quake, a receiving webhook, a refusing one, and [metrics] on a free port."""
    feed = FeedServer(httpserver, "/wire.xml", etags=False)
    feed.add("q1", "Strong earthquake shakes the coastal town of Alpha")

    def accept(_request: Request) -> Response:
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(accept)
    httpserver.expect_request("/refuse", method="POST").respond_with_data("no such hook", status=404)
    port = free_port()
    channels = (
        f'[channels.hook]\ntype = "webhook"\nurl = "{httpserver.url_for("/hook")}"\n'
        f'[channels.refused]\ntype = "webhook"\nurl = "{httpserver.url_for("/refuse")}"\n'
    )
    write_site(
        tmp_path,
        feed_url=feed.url,
        channels=channels,
        default_channels='["hook", "refused"]',
        extra=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n',
    )
    return tmp_path, feed, port


class TestEndpoints:
    def test_status_explain_and_metrics_agree(self, site: tuple[Path, FeedServer, int]) -> None:
        """One alert delivered to one channel and dead on the other reads the same in status, explain and /metrics."""
        folder, _feed, port = site
        base = f"http://127.0.0.1:{port}"
        with running_site(folder) as d:
            d.wait_ready(d.start())
            d.wait_until(lambda: d.outbox()["dead"] == 1 and d.outbox()["delivered"] == 1, "one delivered, one dead")
            code, ctype, metrics = get(f"{base}/metrics")
            health_code, health_type, health = get(f"{base}/healthz")
            status = d.cli("status", "--json")
            [alert] = d.alerts()
            explained = json.loads(d.cli("explain", alert.alert_id, "--json").stdout)
            not_found = get(f"{base}/nothing")[0]
            d.signal(signal.SIGTERM)
            assert d.wait_exit(20) == 0

        assert (code, ctype.split(";")[0]) == (200, "text/plain")
        report = json.loads(status.stdout)
        # status: one delivered, one dead letter, hence degraded (exit 1) — and /healthz says 503 with that body
        assert (report["outbox"]["delivered"], report["outbox"]["dead"], status.returncode) == (1, 1, 1)
        assert (health_code, health_type) == (503, "application/json")
        assert json.loads(health)["outbox"] == report["outbox"]
        assert json.loads(health)["dead_letters"] == report["dead_letters"]
        # explain: the same alert, delivered on hook, dead on refused, each attempt listed
        [shown] = explained["alerts"]
        states = {c["channel"]: c["state"] for c in shown["channels"]}
        assert states == {"hook": "delivered", "refused": "dead"}
        assert sorted((a["channel"], a["outcome"]) for a in shown["attempts"]) == [
            ("hook", "delivered"),
            ("refused", "dead"),
        ]
        assert report["dead_letters"][0]["alert_id"] == alert.alert_id
        # /metrics: counters and store gauges tell the same story
        assert sample(metrics, "feedwatch_alerts_total", rule="quake", severity=str(alert.severity)) == 1
        assert sample(metrics, "feedwatch_deliveries_total", channel="hook") == 1
        assert sample(metrics, "feedwatch_dead_letters_total", channel="refused") == 1
        assert sample(metrics, "feedwatch_delivery_failures_total", channel="refused") == 1
        assert sample(metrics, "feedwatch_outbox_deliveries", state="delivered") == 1
        assert sample(metrics, "feedwatch_outbox_deliveries", state="dead") == 1
        assert sample(metrics, "feedwatch_outbox_depth") == 0
        assert (sample(metrics, "feedwatch_polls_total", feed="wire") or 0) >= 1
        assert sample(metrics, "feedwatch_items_total", feed="wire") == 1
        assert (sample(metrics, "feedwatch_matcher_seconds_count") or 0) >= 1
        assert sample(metrics, "feedwatch_poll_lag_seconds", feed="wire") is not None
        assert sample(metrics, "feedwatch_reloads_total") == 0
        assert all(line.startswith(("# ", "feedwatch_")) for line in metrics.splitlines() if line), (
            "every metric name starts with feedwatch_"
        )
        assert not_found == 404

    def test_healthy_is_200_and_reloads_count(self, site: tuple[Path, FeedServer, int]) -> None:
        """With nothing failing /healthz is 200; a SIGHUP counts a reload, a broken rule file a reload error."""
        folder, feed, port = site
        feed.items.clear()
        base = f"http://127.0.0.1:{port}"
        with running_site(folder) as d:
            d.wait_ready(d.start())
            d.wait_until(
                lambda: (sample(get(f"{base}/metrics")[2], "feedwatch_polls_total", feed="wire") or 0) >= 1, "a poll"
            )
            code, _, body = get(f"{base}/healthz")
            assert code == 200, body
            assert json.loads(body)["daemon"]["running"] is True
            mark = d.signal(signal.SIGHUP)
            d.wait_ready(mark)
            d.wait_until(lambda: sample(get(f"{base}/metrics")[2], "feedwatch_reloads_total") == 1, "one reload")
            (folder / "rules" / "broken.toml").write_text("[rule.x\n")
            mark = d.signal(signal.SIGHUP)
            d.wait_ready(mark)
            d.wait_until(lambda: sample(get(f"{base}/metrics")[2], "feedwatch_reload_errors_total") == 1, "an error")
            assert get(f"{base}/healthz")[0] == 503  # a rule file failed to reload: degraded

    def test_port_in_use_fails_the_start(self, site: tuple[Path, FeedServer, int]) -> None:
        """A listen address already taken stops the daemon at start with a message naming metrics.listen."""
        import socket

        folder, _feed, port = site
        with socket.socket() as taken, running_site(folder) as d:
            taken.bind(("127.0.0.1", port))
            taken.listen(1)
            d.start()
            assert d.wait_exit(20) != 0
            assert "metrics.listen" in d.stderr()
