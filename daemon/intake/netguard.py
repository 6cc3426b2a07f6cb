"""Where a feed may send us: every address a URL's host resolves to is checked before we connect.

Loopback is allowed (a feed served on this host). Link-local and cloud metadata addresses are refused
always; private ranges (RFC 1918, ULA, CGNAT) only with ``allow_private = true``. The check runs on
the configured URL and again on every redirect hop, on the resolved addresses, not the name.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from daemon.intake.proxies import proxy_for

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud metadata services outside the link-local ranges (AWS IPv6, Alibaba); refused even when private
# addresses are allowed.
METADATA = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))
_NEVER = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches local services on some systems
        "169.254.0.0/16",  # link-local, with 169.254.169.254 the usual metadata service
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255
        "::/128",
        "fe80::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address reached through a NAT64 gateway
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10")
)


@functools.lru_cache(maxsize=1024)  # every poll checks its host's addresses, and the peer's
def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be fetched from, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded, allow_private=allow_private)
    if address.is_loopback:
        return None
    if address in METADATA or any(address in net for net in _NEVER):
        return f"{address} is a link-local or metadata address (never fetched)"
    if any(address in net for net in _PRIVATE) and not allow_private:
        return f"{address} is a private address (set allow_private = true for this feed or in [polling])"
    return None


@functools.lru_cache(maxsize=1024)
def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (empty when it cannot resolve it)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []  # the fetch itself reports the resolution failure, with its usual wording
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def peer_refusal(
    url: str, peer: tuple[str, int] | None, *, allow_private: bool, proxied: bool | None = None
) -> str | None:
    """Why the connection to ``peer`` (the address really connected to) may not be used, or None.

    The name was checked before connecting, but connecting resolves it again: a DNS answer that changed
    in between (rebinding) shows here, before the request is sent. Through a proxy the peer is the
    proxy, which the operator chose: not checked (``proxied`` None: as the environment says).
    """
    if proxied is None:
        parts = urlsplit(url)
        proxied = proxy_for(parts.scheme.lower(), parts.hostname or "") is not None
    if proxied or not peer:
        return None
    address = literal_address(str(peer[0]))
    reason = refusal(address, allow_private=allow_private) if address is not None else None
    return f"{urlsplit(url).hostname or ''} was connected at {reason}" if reason else None


async def check_url(url: str, *, allow_private: bool, resolve: Resolver = system_resolve) -> str | None:
    """Why fetching ``url`` is refused (any of its host's addresses is), or None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = [a for a in (literal_address(r) for r in await resolve(host, port)) if a is not None]
    for address in addresses:
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            return reason if literal is not None else f"{host} resolves to {reason}"
    return None
