"""Manufacturers' business calendars and confirmation deadlines (pure: no I/O, no clock).
Rule: a deadline is the close (the cut-off hour, local) of the N-th whole business day after
placement, a day being whole if it began at or after it; SLA 0: the first close after placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from models.domain.calendar_settings import (
    CalendarSettingError,
    check_cutoff_hour,
    check_holiday_calendar,
    check_time_zone,
)

# The rule in full (docs/decisions.md). A business day is a calendar day in the manufacturer's
# zone that is not a weekend day, a public holiday of its country/subdivision (the `holidays`
# package) or a closure day. It runs from its first instant (local midnight) to its close, the
# cut-off hour; an order placed at or after the close is "placed after the cut-off".
# SLA of N business days: the deadline is the close of the N-th whole business day after
# placement, a business day being whole when it began at or after the placement. So an order
# placed on a business day before the cut-off counts from that day (its rest is a free "day 0");
# any other order counts from the next business day, which is its day 1. SLA 0: the first
# business close after placement. With a 17:00 cut-off and SLA 1: Monday 10:00 -> Tuesday 17:00,
# Monday 18:00 -> Tuesday 17:00, Saturday -> Monday 17:00, Friday 18:00 before a Monday holiday
# -> Tuesday 17:00 (the issue's example). Equivalently: the earliest business close after
# placement such that [placement, deadline] holds N whole business days. Consequence: for
# SLA >= 1 the cut-off only sets the close; orders before and after it on the same business day
# get the same deadline.
# SLA in hours: placement + N hours of opening time (opening hour to close on business days,
# elapsed real time, so DST is exact); an order placed outside it starts at the next opening.
# The instant of an hour on a day is the first instant its wall clock reads that hour; when a DST
# gap skips it, the end of the gap (zoneinfo's fold=0 gives that: no tzdata gap of 2019-2039 has
# a whole hour strictly inside it).

# Bounds every day-by-day scan: ten years without a business day means a broken calendar.
_MAX_SCAN_DAYS = 3660
_ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_DEFAULT_OPEN_HOUR = 9


@dataclass(frozen=True)
class BusinessCalendar:
    """One manufacturer's calendar; call `validate()` once when it is created or changed."""

    timezone: str
    weekend_days: frozenset[int] = frozenset({5, 6})
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closure_days: frozenset[date] = frozenset()
    cutoff_hour: int = 17
    # None: 9, or the hour before the cut-off when the cut-off is at or before 9.
    open_hour: int | None = None

    @property
    def opening_hour(self) -> int:
        """The hour opening time starts (only SLAs in hours use it)."""
        if self.open_hour is not None:
            return self.open_hour
        return min(_DEFAULT_OPEN_HOUR, self.cutoff_hour - 1)

    def validate(self) -> None:
        """Raise CalendarSettingError (a ValueError) naming the first bad setting."""
        check_time_zone(self.timezone)
        check_cutoff_hour(self.cutoff_hour)
        if not 0 <= self.opening_hour < self.cutoff_hour:
            rule = f"must be 0-{self.cutoff_hour - 1} (before the cut-off)"
            raise CalendarSettingError("open_hour", rule)
        if not self.weekend_days <= frozenset(range(7)) or len(self.weekend_days) == 7:
            raise CalendarSettingError("weekend_days", "must be a proper subset of 0-6")
        check_holiday_calendar(self.holiday_country, self.holiday_subdivision)

    def is_business_day(self, day: date) -> bool:
        """Not a weekend day, public holiday or closure day."""
        if day.weekday() in self.weekend_days or day in self.closure_days:
            return False
        if self.holiday_country is None:
            return True
        return day not in _holiday_dates(self.holiday_country, self.holiday_subdivision, day.year)

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        candidate = day
        for _ in range(_MAX_SCAN_DAYS + len(self.closure_days)):
            candidate += _ONE_DAY
            if self.is_business_day(candidate):
                return candidate
        raise ValueError(f"no business day within {_MAX_SCAN_DAYS} days after {day}")

    def close_of(self, day: date) -> datetime:
        """The close (cut-off hour, local) of `day`, in UTC."""
        return _local_hour(day, self.cutoff_hour, _zone(self.timezone))


def confirmation_deadline(
    placed_at: datetime,
    calendar: BusinessCalendar,
    sla_business_days: int = 1,
    sla_hours: int | None = None,
) -> datetime:
    """The order's confirmation deadline in UTC (the rule above); `sla_hours` wins if given."""
    placed = _utc(placed_at, "placed_at")
    zone = _zone(calendar.timezone)
    if sla_hours is not None:
        if sla_hours < 0:
            raise ValueError(f"sla_hours must be >= 0, got {sla_hours}")
        return _hours_deadline(placed, calendar, zone, timedelta(hours=sla_hours))
    if sla_business_days < 0:
        raise ValueError(f"sla_business_days must be >= 0, got {sla_business_days}")
    day = placed.astimezone(zone).date()
    if sla_business_days == 0:
        close = _local_hour(day, calendar.cutoff_hour, zone)
        if placed < close and calendar.is_business_day(day):
            return close
        return _local_hour(calendar.next_business_day(day), calendar.cutoff_hour, zone)
    # The first whole business day is the placement day only when placed at its first instant.
    starts_day = (placed - _TICK).astimezone(zone).date() != day
    whole = day if starts_day and calendar.is_business_day(day) else calendar.next_business_day(day)
    for _ in range(sla_business_days - 1):
        whole = calendar.next_business_day(whole)
    return _local_hour(whole, calendar.cutoff_hour, zone)


def reminder_time(placed_at: datetime, deadline: datetime, share: float = 0.75) -> datetime:
    """The moment `share` of the way from placement to deadline, in elapsed (not business) time."""
    placed = _utc(placed_at, "placed_at")
    due = _utc(deadline, "deadline")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be within 0-1, got {share}")
    if due < placed:
        raise ValueError("deadline is before placed_at")
    return placed + (due - placed) * share


def _hours_deadline(
    placed: datetime, calendar: BusinessCalendar, zone: ZoneInfo, remaining: timedelta
) -> datetime:
    day = placed.astimezone(zone).date()
    for _ in range(_MAX_SCAN_DAYS + len(calendar.closure_days)):
        if calendar.is_business_day(day):
            start = max(placed, _local_hour(day, calendar.opening_hour, zone))
            close = _local_hour(day, calendar.cutoff_hour, zone)
            if start <= close:
                if remaining <= close - start:
                    return start + remaining
                remaining -= close - start
        day += _ONE_DAY
    raise ValueError(f"sla_hours reaches beyond {_MAX_SCAN_DAYS} days")


def _local_hour(day: date, hour: int, zone: ZoneInfo) -> datetime:
    # fold=0 reads a wall time inside a DST gap with the offset before it: the gap's end.
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


@lru_cache(maxsize=4096)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # Building a holidays object costs ~0.3 ms; one frozenset per year makes lookups O(1).
    try:
        calendar = holidays.country_holidays(country, subdiv=subdivision, years=year)
    except NotImplementedError as error:
        where = country if subdivision is None else f"{country}/{subdivision}"
        raise ValueError(f"unknown holiday calendar {where!r}: {error}") from error
    return frozenset(day for day in calendar if day.year == year)
