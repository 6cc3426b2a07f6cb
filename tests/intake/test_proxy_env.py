"""Proxy settings are read from the environment exactly as urllib.request reads them, without importing it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from daemon.intake.proxies import ProxyRules, _proxy_environment
from tests.conftest import REPO, cli_env

CASES = [
    {},
    {"HTTP_PROXY": "proxy.invalid:3128"},
    {"http_proxy": "http://lower.invalid:1", "HTTP_PROXY": "http://upper.invalid:2"},
    {"HTTPS_PROXY": "http://secure.invalid:3", "ALL_PROXY": "socks5://all.invalid:4", "NO_PROXY": "a.example,*"},
    {"HTTP_PROXY": "http://upper.invalid:2", "http_proxy": ""},  # an empty lower-case name clears the scheme
    {"HTTP_PROXY": "http://cgi.invalid:5", "REQUEST_METHOD": "GET"},  # CGI: HTTP_PROXY may come from a client
    {"http_proxy": "http://cgi.invalid:6", "REQUEST_METHOD": "GET"},
    {"Https_Proxy": "http://mixed.invalid:7", "no_proxy": "127.0.0.1"},
]
NAMES = {name for case in CASES for name in case} | {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@pytest.mark.parametrize("env", CASES)
def test_environment_is_read_like_urllib(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Upper and lower case, empty values and the CGI rule give the same settings as urllib.request."""
    for name in list(os.environ):
        if name.lower() in NAMES or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _proxy_environment() == urllib.request.getproxies_environment()
    expected = urllib.request.getproxies_environment()
    rules = ProxyRules.from_environment()
    assert set(rules.proxies) == {s for s in ("http", "https", "all") if expected.get(s, "").strip()}


def test_feed_client_does_not_import_urllib_request() -> None:
    """Building the feed client and parsing a feed load no urllib.request (nor its HTTP client)."""
    code = (
        "import sys; from daemon.intake.fetch import FetchSettings, make_client; "
        "from daemon.intake.fastparse import read; make_client(FetchSettings()); "
        "read(b'<feed xmlns=\\'http://www.w3.org/2005/Atom\\'><entry><title>t</title></entry></feed>'); "
        "print(sorted(m for m in ('urllib.request', 'http.client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=cli_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
