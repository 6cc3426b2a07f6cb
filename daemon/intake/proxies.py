"""Which proxy, if any, the environment names for a URL: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``
and ``NO_PROXY`` (either case), read the way curl and httpx read them.

``NO_PROXY`` entries: ``*`` (no proxy at all), a host or domain (``example.org`` also covers its
subdomains; ``.example.org`` only the subdomains), an IP address or network (``10.0.0.0/8``), ``localhost``,
or ``scheme://host`` for one scheme only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import h11

from daemon.intake.headers import BasicAuth


class TunnelRefused(Exception):
    """The proxy would not open a tunnel; the message says what it answered."""


@dataclass(frozen=True, slots=True)
class ProxyRules:
    """The environment's proxy settings, read once (a client reads them when it is made)."""

    proxies: Mapping[str, str]  # "http" / "https" / "all" -> proxy URL
    bypass: tuple[str, ...]  # NO_PROXY entries, lower-cased
    everything_direct: bool = False  # NO_PROXY=*

    @classmethod
    def from_environment(cls) -> ProxyRules:
        if not any(name[-6:].lower() == "_proxy" for name in os.environ):
            # What urllib would find too; it is read only when needed, as it costs a daemon ~2 MB of imports.
            return cls({}, ())
        import urllib.request

        env = urllib.request.getproxies_environment()
        proxies = {
            scheme: url if "://" in url else f"http://{url}"
            for scheme in ("http", "https", "all")
            if (url := env.get(scheme, "").strip())
        }
        entries = tuple(e.strip().lower() for e in env.get("no", "").split(",") if e.strip())
        return cls(proxies, entries, "*" in entries)

    def proxy_for(self, scheme: str, host: str) -> str | None:
        """The proxy URL a request for ``scheme://host`` goes through, or None for a direct connection."""
        if self.everything_direct or not self.proxies:
            return None
        proxy = self.proxies.get(scheme) or self.proxies.get("all")
        if proxy is None:
            return None
        host = host.lower().strip("[]")
        if any(_bypassed(entry, scheme, host) for entry in self.bypass):
            return None
        return proxy


def _bypassed(entry: str, scheme: str, host: str) -> bool:
    if "://" in entry:
        entry_scheme, _, entry = entry.partition("://")
        if entry_scheme != scheme:
            return False
    entry = entry.strip("[]").removeprefix("*")  # "*.example.org" means ".example.org"
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        network = None
    if network is not None:
        try:
            return ipaddress.ip_address(host) in network
        except ValueError:
            return False
    if entry.startswith("."):
        return host.endswith(entry)  # subdomains only
    return host == entry or host.endswith("." + entry)


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy for ``scheme://host`` under the current environment (read now)."""
    return ProxyRules.from_environment().proxy_for(scheme, host)


async def tunnel(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    port: int,
    auth: str | None,
    *,
    max_head: int,
) -> None:
    """Ask an HTTP proxy for a tunnel to ``host:port`` (CONNECT); returns once it answered 2xx."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    fields = [("Host", authority)] + ([("Proxy-Authorization", auth)] if auth else [])
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head)
    writer.write(conn.send(h11.Request(method="CONNECT", target=authority, headers=fields)))
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise TunnelRefused(f"the proxy broke the HTTP protocol: {exc}") from None
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                raise TunnelRefused(f"the proxy closed the connection instead of tunnelling to {authority}")
            conn.receive_data(data)
        elif isinstance(event, h11.Response):
            if 200 <= event.status_code < 300:
                return
            raise TunnelRefused(f"the proxy answered HTTP {event.status_code} to CONNECT {authority}")


def proxy_authorization(proxy: str) -> str | None:
    """Proxy-Authorization for the user and password written in the proxy's URL, if any."""
    parts = urlsplit(proxy)
    if not parts.username:
        return None
    return BasicAuth(unquote(parts.username), unquote(parts.password or "")).header()
