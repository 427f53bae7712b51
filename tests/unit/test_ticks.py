"""Tick arithmetic: every scheduler agrees on the tick of a moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.ticks import tick_for

# hypothesis wants naive bounds and attaches the zone itself.
moments = st.datetimes(
    min_value=datetime(2001, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
periods = st.integers(min_value=1, max_value=86_400).map(lambda s: timedelta(seconds=s))


@given(now=moments, period=periods)
def test_tick_is_the_period_start_containing_now(now: datetime, period: timedelta) -> None:
    # When
    tick = tick_for(now, period)
    # Then
    assert tick <= now < tick + period
    assert tick_for(tick, period) == tick


def test_tick_ignores_the_zone_the_moment_is_written_in() -> None:
    # Given the same instant in two zones
    utc = datetime(2026, 11, 22, 10, 0, 7, tzinfo=UTC)
    berlin = utc.astimezone(timezone(timedelta(hours=1)))
    # Then both give the same tick
    assert tick_for(utc, timedelta(seconds=5)) == datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)
    assert tick_for(berlin, timedelta(seconds=5)) == tick_for(utc, timedelta(seconds=5))


def test_naive_moments_and_empty_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        tick_for(datetime(2026, 1, 1), timedelta(seconds=1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="positive"):
        tick_for(datetime(2026, 1, 1, tzinfo=UTC), timedelta(0))
