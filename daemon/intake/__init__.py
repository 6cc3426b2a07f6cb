"""Fetching, decoding and parsing feeds; poll policy."""
