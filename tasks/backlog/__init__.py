"""backlog."""
