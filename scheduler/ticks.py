"""Tick arithmetic for periodic jobs: pure functions of the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def tick_for(now: datetime, period: timedelta) -> datetime:
    """The start of the period `now` falls in; every scheduler computes the same one."""
    if now.tzinfo is None:
        raise ValueError("aware datetime required")
    if period <= timedelta(0):
        raise ValueError("period must be positive")
    elapsed = now.astimezone(UTC) - EPOCH
    return EPOCH + period * (elapsed // period)
