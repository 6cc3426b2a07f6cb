"""Wiring and lifecycle of the daemon."""
