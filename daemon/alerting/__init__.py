"""Ingest, stories and alert policy (pure core plus the ingest seam)."""
