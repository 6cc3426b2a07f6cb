"""Feeds cannot send us to link-local, metadata or (unless allowed) private addresses, on any redirect hop.

Only 127.0.0.1 servers receive traffic here. Addresses elsewhere are refused before any connection: the
client's connector passes loopback connections to the real network and records (and fails) every other
one, so a broken guard shows up as a recorded attempt, never as traffic.
"""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.config.load import load_config
from daemon.errors import FetchError
from daemon.intake.connection import Streams, open_streams
from daemon.intake.fetch import Fetcher, FetchSettings, make_client
from daemon.intake.http1 import HTTPClient
from daemon.intake.netguard import peer_refusal, refusal
from tests.conftest import CLI, cli_env

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


class LoopbackOnly:
    """Real connections to 127.0.0.1/localhost; any other destination is recorded and fails without a packet sent."""

    def __init__(self) -> None:
        self.elsewhere: list[str] = []

    async def __call__(self, host: str, port: int, tls: ssl.SSLContext | None, name: str | None) -> Streams:
        if host in ("127.0.0.1", "localhost"):
            return await open_streams(host, port, tls, name)
        self.elsewhere.append(host)
        raise ConnectionRefusedError("test connector: no traffic outside loopback")


async def fake_dns(host: str, port: int) -> list[str]:
    """Names used only as strings: what a hostile DNS zone would answer for them."""
    return {
        "metadata.test": ["169.254.169.254"],
        "intranet.test": ["10.20.30.40"],
        "mixed.test": ["93.184.216.34", "fd00:ec2::254"],
        "localhost": ["127.0.0.1"],
    }.get(host, [])


async def fetch(url: str, transport: LoopbackOnly, *, allow_private: bool = False) -> bytes | None:
    settings = FetchSettings(total_timeout=10)
    async with make_client(settings, connect=transport) as client:
        result = await Fetcher(client, settings, resolve=fake_dns).fetch(url, allow_private=allow_private)
    return result.body


class TestRefusal:
    @pytest.mark.parametrize(
        ("address", "private_ok", "refused"),
        [
            ("127.0.0.1", False, False),
            ("127.8.9.10", False, False),
            ("::1", False, False),
            ("169.254.169.254", True, True),
            ("169.254.1.1", True, True),
            ("fe80::1", True, True),
            ("fd00:ec2::254", True, True),
            ("100.100.100.200", True, True),
            ("0.0.0.0", True, True),
            ("::ffff:169.254.169.254", True, True),
            ("64:ff9b::a9fe:a9fe", True, True),
            ("10.1.2.3", False, True),
            ("172.16.0.1", False, True),
            ("192.168.1.1", False, True),
            ("100.64.0.1", False, True),
            ("fd12:3456::1", False, True),
            ("10.1.2.3", True, False),
            ("fd12:3456::1", True, False),
            ("93.184.216.34", False, False),
        ],
    )
    def test_address_table(self, address: str, private_ok: bool, refused: bool) -> None:
        """Loopback and public pass; link-local and metadata never; private ranges only when allowed."""
        reason = refusal(ipaddress.ip_address(address), allow_private=private_ok)
        assert (reason is not None) is refused


class TestRedirectHops:
    @pytest.mark.parametrize(
        "target", ["http://169.254.169.254/latest/meta-data/", "http://metadata.test/", "http://mixed.test/feed"]
    )
    async def test_redirect_to_metadata_is_refused_before_connecting(self, httpserver: HTTPServer, target: str) -> None:
        """A redirect to a metadata address, literal or by a name resolving there, fails with no connection."""
        httpserver.expect_request("/feed").respond_with_data("", status=302, headers={"Location": target})
        transport = LoopbackOnly()
        with pytest.raises(FetchError, match=r"refused: .*(link-local|metadata)"):
            await fetch(httpserver.url_for("/feed"), transport, allow_private=True)
        assert transport.elsewhere == []

    async def test_configured_metadata_url_is_refused(self) -> None:
        """A feed URL naming the metadata service is a permanent error, and nothing is connected to."""
        transport = LoopbackOnly()
        with pytest.raises(FetchError, match="link-local") as info:
            await fetch("http://169.254.169.254/latest/meta-data/", transport, allow_private=True)
        assert not info.value.transient
        assert transport.elsewhere == []

    async def test_private_needs_allow_private(self, httpserver: HTTPServer) -> None:
        """A redirect into a private range is refused by default and attempted only with allow_private."""
        httpserver.expect_request("/feed").respond_with_data(
            "", status=301, headers={"Location": "http://intranet.test/"}
        )
        transport = LoopbackOnly()
        with pytest.raises(FetchError, match="private address"):
            await fetch(httpserver.url_for("/feed"), transport)
        assert transport.elsewhere == []
        with pytest.raises(FetchError):
            await fetch(httpserver.url_for("/feed"), transport, allow_private=True)
        assert transport.elsewhere == ["intranet.test"]  # let through (and failed by the test transport)

    async def test_loopback_stays_allowed(self, httpserver: HTTPServer) -> None:
        """A redirect to localhost is followed by default: feeds served on this host keep working."""
        httpserver.expect_request("/old").respond_with_data(
            "", status=301, headers={"Location": f"http://localhost:{httpserver.port}/new"}
        )
        httpserver.expect_request("/new").respond_with_data(FEED)
        assert await fetch(httpserver.url_for("/old"), LoopbackOnly()) == FEED


class TestRebinding:
    async def test_peer_address_is_read_from_the_real_connection(self, httpserver: HTTPServer) -> None:
        """The client reports the address it really connected to; loopback passes the check."""
        httpserver.expect_request("/feed").respond_with_data(FEED)
        async with HTTPClient(tls=ssl.create_default_context(), connect_timeout=2, read_timeout=2) as client:
            r = await client.get(httpserver.url_for("/feed"), [])
            r.close()
            assert r.peer is not None
            assert r.peer[0] == "127.0.0.1"
            assert peer_refusal(httpserver.url_for("/feed"), r.peer, allow_private=False) is None

    def test_connection_rebound_to_metadata_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A name that resolved to a public address but was connected at 169.254.169.254 is refused.

        A connection to that address cannot be made here: the peer address stands for one (the only stand-in).
        """
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)

        peer = ("169.254.169.254", 80)
        reason = peer_refusal("http://rebind.test/feed", peer, allow_private=True)
        assert reason is not None
        assert "link-local" in reason
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")  # through a proxy the peer is the proxy
        assert peer_refusal("http://rebind.test/feed", peer, allow_private=True) is None


class TestConfig:
    def test_allow_private_per_feed_or_polling(self, tmp_path: Path) -> None:
        """[polling] allow_private is every feed's default; a feed may say otherwise."""
        (tmp_path / "config.toml").write_text(
            "[polling]\nallow_private = true\n"
            '[[feeds]]\nurl = "https://a.example/rss"\n'
            '[[feeds]]\nurl = "https://b.example/rss"\nallow_private = false\n'
        )
        feeds = load_config(tmp_path / "config.toml").feeds
        assert [f.allow_private for f in feeds] == [True, False]


def feedwatch(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = cli_env(**env)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        full.pop(name, None)
    return subprocess.run([*CLI, *args], cwd=cwd, env=full, capture_output=True, text=True, check=False, timeout=60)


class TestCommands:
    def test_score_url_is_guarded(self, tmp_path: Path, httpserver: HTTPServer) -> None:
        """`score URL` refuses a metadata address; the loopback proxy shows no request ever left for it."""
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "r.toml").write_text('[rule.r]\nthreshold = 1.0\n[rule.r.groups.g]\nterms = ["x"]\n')
        (tmp_path / "config.toml").write_text("")
        proxy = httpserver.url_for("/").rstrip("/")
        out = feedwatch(
            tmp_path, "score", "http://169.254.169.254/latest/meta-data/", HTTP_PROXY=proxy, http_proxy=proxy
        )
        assert out.returncode != 0
        assert "link-local" in out.stderr + out.stdout
        assert httpserver.log == []

    def test_opml_import_refuses_file_and_metadata_and_warns_on_loopback(self, tmp_path: Path) -> None:
        """file: and metadata URLs are not imported; a localhost URL is imported with a warning."""
        (tmp_path / "config.toml").write_text("")
        (tmp_path / "feeds.opml").write_text(
            '<?xml version="1.0"?><opml version="2.0"><head/><body>'
            '<outline text="ok" xmlUrl="https://news.example.org/rss"/>'
            '<outline text="shadow" xmlUrl="file:///etc/shadow"/>'
            '<outline text="meta" xmlUrl="http://169.254.169.254/latest/meta-data/"/>'
            '<outline text="admin" xmlUrl="http://localhost:8080/admin/feed"/>'
            "</body></opml>"
        )
        out = feedwatch(tmp_path, "feeds", "import", "feeds.opml")
        assert out.returncode == 0, out.stderr
        config = (tmp_path / "config.toml").read_text()
        assert "news.example.org" in config
        assert "localhost:8080" in config
        assert "/etc/shadow" not in config
        assert "169.254.169.254" not in config
        said = out.stdout + out.stderr
        assert "file:///etc/shadow" in said
        assert "169.254.169.254" in said
        assert "localhost:8080" in said
        assert "imported 2 of 4" in said
