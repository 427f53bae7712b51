"""CLI command implementations, one module per area."""
