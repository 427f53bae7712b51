"""`python -m workers` is the `orderflow` command."""

from workers.cli import main

main()
