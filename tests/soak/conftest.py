"""The soak runs on the e2e tests' real stack (its fixtures, shared here)."""

from __future__ import annotations

from tests.e2e.conftest import stack

__all__ = ["stack"]
