"""Proxy settings are read from the environment as urllib.request reads them."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from daemon.intake.proxies import ProxyRules

CASES = [
    {},
    {"HTTP_PROXY": "proxy.invalid:3128"},
    {"http_proxy": "http://lower.invalid:1", "HTTP_PROXY": "http://upper.invalid:2"},
    {"HTTPS_PROXY": "http://secure.invalid:3", "ALL_PROXY": "socks5://all.invalid:4", "NO_PROXY": "a.example,*"},
    {"HTTP_PROXY": "http://upper.invalid:2", "http_proxy": ""},  # an empty lower-case name clears the scheme
    {"HTTP_PROXY": "http://cgi.invalid:5", "REQUEST_METHOD": "GET"},  # CGI: HTTP_PROXY may come from a client
    {"http_proxy": "http://cgi.invalid:6", "REQUEST_METHOD": "GET"},
    {"Https_Proxy": "http://mixed.invalid:7", "no_proxy": "127.0.0.1"},
    {"FTP_PROXY": "http://ftp.invalid:8"},  # a proxy for a scheme feeds do not use
    {"NO_PROXY": "*"},
]
NAMES = {name for case in CASES for name in case} | {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@pytest.mark.parametrize("env", CASES)
def test_environment_is_read_like_urllib(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Upper and lower case, empty values and the CGI rule give the proxies urllib.request finds."""
    for name in list(os.environ):
        if name.lower() in NAMES or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    expected = urllib.request.getproxies_environment()
    rules = ProxyRules.from_environment()
    assert set(rules.proxies) == {s for s in ("http", "https", "all") if expected.get(s, "").strip()}


def test_no_proxy_variable_loads_no_urllib() -> None:
    """Without any *_proxy variable the settings are read without importing urllib.request (~2 MB)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    code = (
        "import sys; from daemon.intake.proxies import ProxyRules; r = ProxyRules.from_environment(); "
        "print(dict(r.proxies), r.bypass, 'urllib.request' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["{}", "()", "False"]
