"""One home per small utility."""
