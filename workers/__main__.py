"""`python -m workers` is the `orderflow` command."""

from workers.cli.app import main

main()
