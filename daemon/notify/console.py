"""Console channel: a readable block per alert on stdout (the demo, `run --once`, debugging)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal, TextIO

import msgspec

from daemon.errors import PermanentDeliveryError
from daemon.models import Alert, AlertKind, Hit
from daemon.notify.base import Channel, ChannelType

if TYPE_CHECKING:
    import httpx  # the console needs no HTTP: its module must not load httpx for `status` and `check`

RULE = "─" * 72


def _hit_line(hits: tuple[Hit, ...]) -> str:
    """Counted hits first, each term once: `Martuni (places, title) · shelling (escalation, summary)`."""
    seen: dict[str, str] = {}
    for hit in sorted(hits, key=lambda h: -h.contribution):
        label = hit.text if hit.fuzzy is None else f"{hit.text} ≈ {hit.alias} {hit.fuzzy:.0f}%"
        seen.setdefault(f"{hit.group}/{hit.term}", f"{label} ({hit.group}, {hit.field}, {hit.contribution:+g})")
    return " · ".join(seen.values())


def format_alert(alert: Alert) -> str:
    head = {
        AlertKind.NEW: "ALERT",
        AlertKind.UPDATE: "UPDATE",
        AlertKind.STORM: "GROUPED",
        AlertKind.DIGEST: "DIGEST",
        AlertKind.OPS: "FEED",
        AlertKind.TEST: "TEST",
    }[alert.kind]
    lines = [RULE, f"{head} [{alert.severity}] {alert.rule_id or 'feedwatch'}  score {alert.score:g}"]
    lines.append(f"  {alert.title}")
    if alert.link:
        lines.append(f"  {alert.link}")
    when = f" · published {alert.published:%Y-%m-%d %H:%M} UTC" if alert.published else ""
    lines.append(f"  feed: {alert.feed}{when} · story {alert.story_id or '-'} · id {alert.alert_id}")
    if alert.hits:
        lines.append(f"  why: {_hit_line(alert.hits)}")
    if alert.also_reported_by:
        lines.append(f"  also reported by: {', '.join(alert.also_reported_by)}")
    if alert.snippet:
        lines.append(f"  {alert.snippet}")
    for entry in alert.entries:
        lines.append(f"  - [{entry.severity}] {entry.rule_id}: {entry.title} ({entry.feed})")
    return "\n".join(lines)


class ConsoleSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    stream: Literal["stdout", "stderr"] = "stdout"


class ConsoleChannel:
    def __init__(self, name: str, settings: ConsoleSettings | None = None, *, out: TextIO | None = None) -> None:
        self.name = name
        stream = settings.stream if settings else "stdout"
        self._out = out or (sys.stderr if stream == "stderr" else sys.stdout)

    async def send(self, alert: Alert) -> None:
        try:
            print(format_alert(alert), file=self._out, flush=True)
        except BrokenPipeError:
            # `feedwatch run --once | head`: the reader has gone; retrying cannot bring it back.
            raise PermanentDeliveryError("the console's reader has gone (stdout is a closed pipe)") from None

    async def aclose(self) -> None:
        return None


def _build(name: str, settings: ConsoleSettings, http: httpx.AsyncClient) -> Channel:
    return ConsoleChannel(name, settings)


CHANNEL = ChannelType("console", ConsoleSettings, _build)
