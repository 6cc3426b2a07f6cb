"""feedwatch: watch RSS/Atom feeds with explainable rules and deliver alerts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("feedwatch")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
