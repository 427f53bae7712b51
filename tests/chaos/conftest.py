"""Chaos tests run on the same real stack as the e2e tests (its fixtures, shared here)."""

from __future__ import annotations

from tests.e2e.conftest import stack

__all__ = ["stack"]
