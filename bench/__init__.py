"""Benchmarks; each reports its ratio to bare dramatiq measured in the same run."""
