"""Typed configuration and secrets."""
