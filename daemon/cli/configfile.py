"""Editing config.toml safely: the edited text is validated as a config before it replaces the file,
and the file keeps its owner, group and mode (a `sudo feedwatch feeds add` must not lock the service
out of a root:feedwatch 0640 config)."""

from __future__ import annotations

from pathlib import Path

import tomlkit

from daemon.config.load import load_config
from daemon.config.model import Config
from daemon.errors import ConfigError
from daemon.util.files import replace_keeping_owner


def write_validated(path: Path, document: tomlkit.TOMLDocument) -> Config:
    """Validate the edited document as a config, then replace ``path`` keeping owner, group and mode."""
    loaded: list[Config] = []

    def validate(tmp: Path) -> None:
        try:
            loaded.append(load_config(tmp, secrets=False))
        except ConfigError as exc:
            # The check reads a temporary copy; the operator only knows the file they edit.
            raise ConfigError.combine([_renamed(p, tmp, path) for p in exc.problems]) from None

    replace_keeping_owner(path, tomlkit.dumps(document), validate=validate)
    return loaded[0]


def _renamed(problem: ConfigError, tmp: Path, path: Path) -> ConfigError:
    """``problem`` as found in ``path`` rather than in the temporary copy ``tmp``."""
    return ConfigError(
        problem.reason.replace(str(tmp), str(path)),
        path=path if problem.path == str(tmp) else problem.path,
        key=problem.key,
        line=problem.line,
        column=problem.column,
    )
