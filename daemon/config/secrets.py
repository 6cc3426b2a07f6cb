"""Secrets from the environment, files or systemd credentials, never printed.

A :class:`Secret` hides its value from ``repr``/``str`` (so it cannot leak through a log line or a
traceback's locals) until code explicitly calls :meth:`Secret.reveal`.
"""

from __future__ import annotations

import os
from pathlib import Path

from daemon.errors import ConfigError

REDACTED = "********"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def resolve_secret(
    *,
    value: str | None = None,
    env: str | None = None,
    file: str | Path | None = None,
    credential: str | None = None,
    key: str,
    config_path: Path | str | None = None,
) -> Secret | None:
    """Resolve one secret from exactly one source.

    ``credential`` names a file in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).
    Trailing newlines are stripped from files, as editors and ``echo`` add them.
    """
    sources = [s for s in (value, env, file, credential) if s is not None]
    if not sources:
        return None
    if len(sources) > 1:
        raise ConfigError(
            "give the secret one way only (value, *_env, *_file or *_credential)", path=config_path, key=key
        )
    if value is not None:
        return Secret(value)
    if env is not None:
        found = os.environ.get(env)
        if found is None:
            raise ConfigError(f"environment variable {env} is not set", path=config_path, key=key)
        return Secret(found)
    if credential is not None:
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if not creds:
            raise ConfigError(
                f"credential {credential!r} requested but $CREDENTIALS_DIRECTORY is not set "
                "(LoadCredential= in the unit)",
                path=config_path,
                key=key,
            )
        file = Path(creds) / credential
    assert file is not None
    try:
        return Secret(Path(file).read_text(encoding="utf-8").rstrip("\r\n"))
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {file}: {exc.strerror}", path=config_path, key=key) from exc
