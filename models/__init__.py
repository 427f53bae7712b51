"""The vocabulary of orderflow and how it is stored."""
