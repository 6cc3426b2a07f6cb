"""The feedwatch error hierarchy.

    FeedwatchError
    ├── ConfigError              config.toml / feeds.d: file, key path, what was expected
    ├── RuleError                rules/*.toml: file, line, column, rule id
    ├── FetchError               one feed could not be fetched (feed_url, status, transient?, retry_after)
    │   └── FeedParseError       bytes arrived but are not a usable feed
    ├── StoreError               SQLite trouble (locked, full, corrupt); may pass, so exit 1
    │   └── DaemonRunningError   another daemon holds this store's lock (pid)
    └── DeliveryError            a channel could not deliver (channel, alert_id)
        ├── TransientDeliveryError   try again later (5xx, 421, 429, timeout, refused)
        └── PermanentDeliveryError   retrying will not help (4xx, 550, bad payload)

Third-party exceptions are wrapped at the edge with ``raise ... from exc`` so callers only
ever catch these.
"""

from __future__ import annotations

from pathlib import Path


class FeedwatchError(Exception):
    """Root of every error feedwatch raises on purpose."""


class ConfigError(FeedwatchError):
    """The configuration is invalid; the message names the file, position and key path.

    One load reports every mistake it finds: ``problems`` holds each one (itself when alone), and the
    message lists them one per line as ``file:line:column: key.path: reason``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        key: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.key = key
        self.line = line
        self.column = column
        self.problems: tuple[ConfigError, ...] = (self,)
        prefix = ""
        if self.path:
            prefix = self.path
            if line is not None:
                prefix += f":{line}" + (f":{column}" if column is not None else "")
            prefix += ": "
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message)
        self.reason = message

    @classmethod
    def combine(cls, problems: list[ConfigError]) -> ConfigError:
        """One error carrying several: its text is theirs, one per line."""
        first = problems[0]
        error = cls("\n".join(str(p) for p in problems))
        error.path, error.key, error.line, error.column = first.path, first.key, first.line, first.column
        error.problems = tuple(problems)
        return error


class RuleError(FeedwatchError):
    """A rule file is invalid; carries file, line and column where known."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        rule_id: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.rule_id = rule_id
        self.reason = message
        where = self.path or "<rules>"
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


class FetchError(FeedwatchError):
    """A feed could not be fetched.

    ``transient`` failures are retried with backoff; ``gone`` (HTTP 410) disables the feed.
    ``retry_after`` is the publisher's requested delay in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        feed_url: str,
        status: int | None = None,
        transient: bool = True,
        gone: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.feed_url = feed_url
        self.status = status
        self.transient = transient
        self.gone = gone
        self.retry_after = retry_after
        self.reason = message
        super().__init__(f"{feed_url}: {message}")


class FeedParseError(FetchError):
    """The response is not a feed (HTML page, empty body, unparseable XML)."""

    def __init__(self, message: str, *, feed_url: str) -> None:
        super().__init__(message, feed_url=feed_url, transient=True)


class StoreError(FeedwatchError):
    """The SQLite store failed (locked for too long, disk or size limit full, corrupt)."""


class DaemonRunningError(StoreError):
    """Another daemon runs on this store (it holds the store's lock file); ``pid`` when known."""

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class DeliveryError(FeedwatchError):
    """A channel failed to deliver an alert."""

    def __init__(
        self,
        message: str,
        *,
        channel: str = "",
        alert_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.channel = channel
        self.alert_id = alert_id
        self.retry_after = retry_after
        self.reason = message
        super().__init__(f"{channel}: {message}" if channel else message)


class TransientDeliveryError(DeliveryError):
    """Worth retrying: server error, timeout, refused connection, rate limit."""


class PermanentDeliveryError(DeliveryError):
    """Not worth retrying: the receiver rejected this alert or our configuration."""
