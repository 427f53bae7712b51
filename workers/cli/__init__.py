"""The `orderflow` command line: one Typer module per area beside what it runs."""
