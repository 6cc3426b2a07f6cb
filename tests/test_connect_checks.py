"""Hosts and ports a channel or feed cannot connect to are refused by `check`, before any connection is tried;
`send-test` answers in one line. No test here connects anywhere but 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from daemon.util.urls import ascii_host, host_problem, http_url_problem
from tests.conftest import CLI, cli_env
from tests.servers import free_port


class TestHostProblem:
    @pytest.mark.parametrize(
        "host",
        ["127.0.0.1", "::1", "[::1]", "hooks.slack.com", "a_b.example", "xn--bcher-kva.example", "bücher.example",
         "BÜCHER.example", "localhost", "example.org."],
    )  # fmt: skip
    def test_connectable_hosts_pass(self, host: str) -> None:
        """Addresses, ordinary names, valid A-labels and names that encode under IDNA 2008 pass."""
        assert host_problem(host) is None

    @pytest.mark.parametrize(
        ("host", "words"),
        [
            ("xn--zz.example", "A-label"),
            ("news.xn--zz.example", "A-label"),
            ("xn--a.example", "A-label"),
            ("a..example", "label ''"),
            ("exa mple.org", "not a valid host name"),
            ("x" * 64 + ".example", "not a valid host name"),
            ("\u0661\u0662a.example", "internationalized"),  # Arabic digits mixed with Latin: IDNA 2008 says no
            ("", "no host"),
        ],
    )
    def test_hosts_no_resolver_would_take_are_named(self, host: str, words: str) -> None:
        """Invalid A-labels, empty or overlong labels, spaces and names IDNA 2008 refuses are reported."""
        problem = host_problem(host)
        assert problem is not None
        assert words in problem

    def test_ascii_host_uses_idna_2008(self) -> None:
        """ß stays a letter of its own (IDNA 2008), where Python's IDNA 2003 codec would turn faß into fass."""
        assert ascii_host("faß.de") == "xn--fa-hia.de"
        assert "faß.de".encode("idna") == b"fass.de"  # the other host the socket module would have asked for
        assert ascii_host("news.example") == "news.example"

    @pytest.mark.parametrize(
        ("url", "words"),
        [
            ("http://127.0.0.1:99999/hook", "1-65535"),
            ("http://127.0.0.1:0/hook", "1-65535"),
            ("http://127.0.0.1:http/hook", "1-65535"),
            ("https://xn--zz.example/hook", "A-label"),
            ("ftp://127.0.0.1/hook", "http(s)"),
        ],
    )
    def test_urls(self, url: str, words: str) -> None:
        """Ports outside 1-65535, bad hosts and other schemes are named; the message never repeats the URL."""
        problem = http_url_problem(url)
        assert problem is not None
        assert words in problem
        assert "/hook" not in problem

    def test_good_url(self) -> None:
        """A loopback URL with a port in range passes."""
        assert http_url_problem("http://127.0.0.1:8080/hook?x=1") is None


CHANNELS = {
    "webhook-port": ('type = "webhook"\nurl = "http://127.0.0.1:99999/hook"', "1-65535"),
    "webhook-idna": ('type = "webhook"\nurl = "https://xn--zz.example/hook"', "A-label"),
    "email-idna": (
        'type = "email"\nhost = "xn--zz.example"\nsender = "fw@example.org"\nrecipients = ["d@example.org"]',
        "A-label",
    ),
}


def site(tmp_path: Path, channel: str, *, feed: str = "feed.xml") -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    # One rule: a rules folder without any is an error of its own (fatal at start, and for check).
    (tmp_path / "rules" / "one.toml").write_text('[rule.one]\n[rule.one.groups.g]\nterms = ["quake"]\n')
    (tmp_path / "config.toml").write_text(
        f'[daemon]\nrules_dir = "rules"\n[channels.out]\n{channel}\n[[feeds]]\nurl = "{feed}"\n'
    )
    return tmp_path


def feedwatch(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=folder, env=cli_env(NO_PROXY="*"), capture_output=True, text=True, timeout=30, check=False
    )


class TestCheck:
    @pytest.mark.parametrize("case", sorted(CHANNELS))
    def test_check_refuses_unconnectable_channels(self, tmp_path: Path, case: str) -> None:
        """`check` exits 2 naming the channel key and the problem, for ports out of range and invalid A-labels."""
        body, words = CHANNELS[case]
        done = feedwatch(site(tmp_path, body), "check")
        assert done.returncode == 2, done.stdout + done.stderr
        assert words in done.stderr, done.stderr
        assert "channels.out" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr

    def test_check_refuses_a_feed_on_a_bad_port(self, tmp_path: Path) -> None:
        """A feed URL with port 70000 is a config error, not a poll that fails forever."""
        done = feedwatch(site(tmp_path, 'type = "console"', feed="http://127.0.0.1:70000/feed.xml"), "check")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "1-65535" in done.stderr, done.stderr

    def test_check_accepts_an_international_name(self, tmp_path: Path) -> None:
        """A host that encodes under IDNA 2008 is accepted (it is never connected to here)."""
        done = feedwatch(site(tmp_path, 'type = "webhook"\nurl = "https://bücher.example/hook"'), "check")
        assert done.returncode == 0, done.stderr


class TestSendTest:
    def test_unconnectable_channel_is_one_line(self, tmp_path: Path) -> None:
        """send-test on a channel `check` refuses answers in one line, exit 2, no traceback."""
        done = feedwatch(site(tmp_path, CHANNELS["webhook-port"][0]), "send-test", "out")
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "1-65535" in done.stderr

    def test_failed_send_is_one_line(self, tmp_path: Path) -> None:
        """A receiver that is not there (a closed loopback port) gives one line naming the failure, exit 1."""
        body = f'type = "webhook"\nurl = "http://127.0.0.1:{free_port()}/hook"\ntimeout = "2s"'
        done = feedwatch(site(tmp_path, body), "send-test", "out")
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("feedwatch: send-test to out failed (temporary)"), lines
