"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse

from daemon.config.settings import Config, find_config, load_config


def load(args: argparse.Namespace, *, secrets: bool = True) -> Config:
    """The config named by --config, $FEEDWATCH_CONFIG or ./config.toml."""
    return load_config(find_config(args.config), secrets=secrets)
