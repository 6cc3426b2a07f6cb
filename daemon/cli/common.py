"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TextIO

from daemon.config.load import find_config, load_config
from daemon.config.model import Config
from daemon.util.redact import redact_text

# Controls (bar newline and tab) and bidi overrides/isolates/marks: feed text must not reorder or hide
# what a terminal shows.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def load(args: argparse.Namespace, *, secrets: bool = True) -> Config:
    """The config named by --config, $FEEDWATCH_CONFIG or ./config.toml."""
    return load_config(find_config(args.config), secrets=secrets)


def count(text: str) -> int:
    """An argparse type for ``-n``: a positive whole number (SQLite reads a negative LIMIT as none)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def show(text: str, *, file: TextIO | None = None, flush: bool = False) -> None:
    """Print command output: secrets redacted, control and bidi characters removed."""
    print(redact_text(_UNSAFE.sub("", text)), file=file or sys.stdout, flush=flush)
