"""SQLite state: the only code that speaks SQL."""
