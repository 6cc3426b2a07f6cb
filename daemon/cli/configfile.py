"""Editing config.toml safely: the edited text is validated as a config before it replaces the file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import tomlkit

from daemon.config.load import load_config
from daemon.config.model import Config


def write_validated(path: Path, document: tomlkit.TOMLDocument) -> Config:
    """Write next to the original, validate the result, then atomically replace the original."""
    fd, tmp = tempfile.mkstemp(prefix=".feedwatch-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(tomlkit.dumps(document))
        config = load_config(Path(tmp), secrets=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return config
