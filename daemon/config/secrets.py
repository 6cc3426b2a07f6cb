"""Secrets from the environment, files or systemd credentials, resolved once at load."""

from __future__ import annotations

import os
from pathlib import Path

from daemon.errors import ConfigError
from daemon.util.secret import Secret as Secret


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
