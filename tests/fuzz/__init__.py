"""Fuzzing: hypothesis properties and atheris harnesses (docs/fuzzing.md)."""
