"""The config package's public names: the typed model (:mod:`daemon.config.model`) and its loader
(:mod:`daemon.config.load`), importable from one place."""

from __future__ import annotations

from daemon.config.load import find_config as find_config
from daemon.config.load import load_config as load_config
from daemon.config.load import read_toml as read_toml
from daemon.config.model import AlertConfig as AlertConfig
from daemon.config.model import ChannelConfig as ChannelConfig
from daemon.config.model import Config as Config
from daemon.config.model import FeedConfig as FeedConfig
from daemon.config.model import PollingConfig as PollingConfig
from daemon.config.model import StoreConfig as StoreConfig
