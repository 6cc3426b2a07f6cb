"""Command-line entry point (parser, dispatch, exit codes)."""
