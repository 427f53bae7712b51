"""backorders."""
