"""Business calendars and confirmation deadlines: exact examples and property tests vs an oracle."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.domain.calendar import BusinessCalendar, confirmation_deadline, reminder_time
from models.domain.calendar_settings import CalendarSettingError

BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
BAVARIA = BusinessCalendar("Europe/Berlin", holiday_country="DE", holiday_subdivision="BY")
ENGLAND = BusinessCalendar("Europe/London", holiday_country="GB", holiday_subdivision="ENG")

ZONES = (
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
    "UTC",
)
HOLIDAY_CALENDARS = (
    (None, None),
    ("DE", None),
    ("DE", "BY"),
    ("DE", "BE"),
    ("GB", "ENG"),
    ("GB", "SCT"),
    ("US", "CA"),
    ("US", "NY"),
    ("FR", None),
    ("NL", None),
    ("AT", None),
    ("CH", "ZH"),
    ("CL", None),
    ("AU", "NSW"),
)
WEEKENDS: tuple[frozenset[int], ...] = (
    frozenset({5, 6}),
    frozenset({4, 5}),
    frozenset({6}),
    frozenset({4}),
    frozenset(),
)
SETTINGS = settings(max_examples=100, deadline=None)


@dataclass(frozen=True)
class Case:
    placed: datetime
    calendar: BusinessCalendar
    sla: int


@st.composite
def cases(draw: st.DrawFn, max_sla: int = 10) -> Case:
    # hypothesis wants naive bounds and attaches the zone itself.
    placed = draw(
        st.datetimes(
            min_value=datetime(2020, 1, 1),  # noqa: DTZ001
            max_value=datetime(2035, 12, 31),  # noqa: DTZ001
            timezones=st.just(UTC),
        )
    )
    country, subdivision = draw(st.sampled_from(HOLIDAY_CALENDARS))
    cutoff = draw(st.integers(min_value=8, max_value=22))
    offsets = draw(st.frozensets(st.integers(min_value=-1, max_value=25), max_size=6))
    calendar = BusinessCalendar(
        timezone=draw(st.sampled_from(ZONES)),
        weekend_days=draw(st.sampled_from(WEEKENDS)),
        holiday_country=country,
        holiday_subdivision=subdivision,
        closure_days=frozenset(placed.date() + timedelta(days=o) for o in offsets),
        cutoff_hour=cutoff,
        open_hour=draw(st.none() | st.integers(min_value=0, max_value=cutoff - 1)),
    )
    return Case(placed, calendar, draw(st.integers(min_value=0, max_value=max_sla)))


# --- an independent oracle, written from the rule at the top of models/domain/calendar.py -----


@lru_cache(maxsize=1024)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def _is_business(calendar: BusinessCalendar, day: date) -> bool:
    if day.weekday() in calendar.weekend_days or day in calendar.closure_days:
        return False
    country = calendar.holiday_country
    return country is None or day not in _public_holidays(
        country, calendar.holiday_subdivision, day.year
    )


def _wall(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def _business_days(calendar: BusinessCalendar, first: date, last: date) -> Iterator[date]:
    """Business days from `first` to `last` inclusive, lazily; at most 400 days apart."""
    assert (last - first).days <= 400
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return (day for day in days if _is_business(calendar, day))


def _oracle(case: Case) -> datetime:
    """The earliest business close after placement with `sla` whole business days before it."""
    zone = ZoneInfo(case.calendar.timezone)
    first = case.placed.astimezone(zone).date()
    whole = 0
    for day in _business_days(case.calendar, first, first + timedelta(days=400)):
        close = _wall(day, case.calendar.cutoff_hour, zone)
        if close <= case.placed:
            continue
        whole += _wall(day, 0, zone) >= case.placed
        if whole >= case.sla:
            return close
    raise AssertionError("no deadline within 400 days")


def _opening_time(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Opening time (opening hour to close of business days) inside [start, end]."""
    zone = ZoneInfo(calendar.timezone)
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    total = timedelta()
    for day in _business_days(calendar, first, last):
        opens = max(start, _wall(day, calendar.opening_hour, zone))
        closes = min(end, _wall(day, calendar.cutoff_hour, zone))
        total += max(closes - opens, timedelta())
    return total


# --- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(case=cases())
def test_the_deadline_is_the_close_of_the_nth_whole_business_day(case: Case) -> None:
    # When
    deadline = confirmation_deadline(case.placed, case.calendar, case.sla)
    # Then it is aware UTC, after placement, at exactly the close of a business day
    zone = ZoneInfo(case.calendar.timezone)
    local = deadline.astimezone(zone)
    assert deadline.tzinfo is UTC
    assert deadline > case.placed
    assert local.timetz().replace(tzinfo=None) == time(case.calendar.cutoff_hour)
    assert _is_business(case.calendar, local.date())
    # and it is the oracle's earliest close holding `sla` whole business days
    assert deadline == _oracle(case)
    days = _business_days(case.calendar, case.placed.astimezone(zone).date(), local.date())
    whole = [day for day in days if _wall(day, 0, zone) >= case.placed]
    assert len(whole) == max(case.sla, 1 if local.date() in whole else 0)


@SETTINGS
@given(case=cases())
def test_business_days_between_the_counted_start_and_the_deadline_follow_the_rule(
    case: Case,
) -> None:
    # Given the day the order counts from: the placement day if placed before its close,
    # else the next business day
    zone = ZoneInfo(case.calendar.timezone)
    placed_day = case.placed.astimezone(zone).date()
    same_day = _is_business(case.calendar, placed_day) and case.placed < _wall(
        placed_day, case.calendar.cutoff_hour, zone
    )
    # When
    deadline_day = confirmation_deadline(case.placed, case.calendar, case.sla).astimezone(zone)
    # Then
    days = list(_business_days(case.calendar, placed_day, deadline_day.date()))
    start = days[0] if same_day else next(d for d in days if d > placed_day)
    # the business days in (start, deadline day] number N, or N - 1 when the start is whole
    # (placed at or before its first instant, as after the cut-off or on a non-business day)
    whole_start = _wall(start, 0, zone) >= case.placed
    after_start = [d for d in days if start < d]
    assert len(after_start) == case.sla - (1 if whole_start and case.sla > 0 else 0)


@SETTINGS
@given(case=cases(), later=st.integers(min_value=0, max_value=10 * 86_400_000_000))
def test_a_later_placement_never_gets_an_earlier_deadline(case: Case, later: int) -> None:
    # Given a second order placed up to ten days later
    second = case.placed + timedelta(microseconds=later)
    # Then its deadline is not earlier, whether counted in days or in hours
    first_days = confirmation_deadline(case.placed, case.calendar, case.sla)
    assert first_days <= confirmation_deadline(second, case.calendar, case.sla)
    first_hours = confirmation_deadline(case.placed, case.calendar, sla_hours=case.sla)
    assert first_hours <= confirmation_deadline(second, case.calendar, sla_hours=case.sla)


@SETTINGS
@given(case=cases(max_sla=9))
def test_a_longer_sla_gives_a_later_deadline(case: Case) -> None:
    # When
    shorter = confirmation_deadline(case.placed, case.calendar, case.sla)
    longer = confirmation_deadline(case.placed, case.calendar, case.sla + 1)
    # Then one more business day is a strictly later close, except from SLA 0 to 1, which
    # coincide when the order counts from the next business day (a whole day 1)
    assert shorter < longer or (case.sla == 0 and shorter == longer)


@SETTINGS
@given(case=cases(max_sla=40), zone=st.sampled_from(ZONES))
def test_sla_hours_is_exactly_n_hours_of_opening_time(case: Case, zone: str) -> None:
    # When the placement is written in any zone
    deadline = confirmation_deadline(
        case.placed.astimezone(ZoneInfo(zone)), case.calendar, sla_hours=case.sla
    )
    # Then exactly `sla` hours of opening time lie between placement and deadline
    assert deadline.tzinfo is UTC
    assert deadline >= case.placed
    assert _opening_time(case.calendar, case.placed, deadline) == timedelta(hours=case.sla)
    # and an hour-based deadline falls inside opening time: (opening, close] of a business day
    if case.sla > 0:
        day = deadline.astimezone(ZoneInfo(case.calendar.timezone)).date()
        assert _is_business(case.calendar, day)
        tz = ZoneInfo(case.calendar.timezone)
        assert _wall(day, case.calendar.opening_hour, tz) < deadline
        assert deadline <= _wall(day, case.calendar.cutoff_hour, tz)


@SETTINGS
@given(case=cases(), zone=st.sampled_from(ZONES))
def test_the_zone_the_placement_is_written_in_does_not_matter(case: Case, zone: str) -> None:
    # Then the same instant gives the same deadline
    shown = case.placed.astimezone(ZoneInfo(zone))
    assert confirmation_deadline(shown, case.calendar, case.sla) == confirmation_deadline(
        case.placed, case.calendar, case.sla
    )


@SETTINGS
@given(case=cases(), offset=st.integers(min_value=-3, max_value=30))
def test_is_business_day_matches_weekends_holidays_and_closures(case: Case, offset: int) -> None:
    # Given a day near the placement
    day = case.placed.date() + timedelta(days=offset)
    # Then the calendar agrees with the holidays package, the weekend and the closure days
    assert case.calendar.is_business_day(day) == _is_business(case.calendar, day)


# --- examples with exact values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "placed", "expected"),
    [
        # Friday evening before the Spring Bank Holiday (Mon 2026-05-25): Tuesday 17:00 BST
        (ENGLAND, datetime(2026, 5, 22, 18, tzinfo=LONDON), datetime(2026, 5, 26, 16, tzinfo=UTC)),
        # Friday evening before Pfingstmontag in Bavaria: Tuesday 17:00 CEST
        (BAVARIA, datetime(2026, 5, 22, 18, tzinfo=BERLIN), datetime(2026, 5, 26, 15, tzinfo=UTC)),
        # Maundy Thursday evening: Good Friday and Easter Monday skipped
        (ENGLAND, datetime(2026, 4, 2, 18, tzinfo=LONDON), datetime(2026, 4, 7, 16, tzinfo=UTC)),
        # Monday morning, Monday after the cut-off, Saturday
        (BAVARIA, datetime(2026, 3, 2, 10, tzinfo=BERLIN), datetime(2026, 3, 3, 16, tzinfo=UTC)),
        (BAVARIA, datetime(2026, 3, 2, 18, tzinfo=BERLIN), datetime(2026, 3, 3, 16, tzinfo=UTC)),
        (BAVARIA, datetime(2026, 3, 7, 12, tzinfo=BERLIN), datetime(2026, 3, 9, 16, tzinfo=UTC)),
        # Monday at its very first instant: Monday is a whole business day
        (BAVARIA, datetime(2026, 3, 2, 0, tzinfo=BERLIN), datetime(2026, 3, 2, 16, tzinfo=UTC)),
        # Christmas Eve (a working day in DE): 25th, 26th and the Sunday skipped
        (
            BAVARIA,
            datetime(2026, 12, 24, 10, tzinfo=BERLIN),
            datetime(2026, 12, 28, 16, tzinfo=UTC),
        ),
        # DST weekends: Europe/Berlin spring and autumn, America/New_York spring and autumn
        (BAVARIA, datetime(2026, 3, 27, 18, tzinfo=BERLIN), datetime(2026, 3, 30, 15, tzinfo=UTC)),
        (
            BAVARIA,
            datetime(2026, 10, 23, 18, tzinfo=BERLIN),
            datetime(2026, 10, 26, 16, tzinfo=UTC),
        ),
        (
            BusinessCalendar("America/New_York", holiday_country="US", holiday_subdivision="NY"),
            datetime(2026, 3, 6, 18, tzinfo=NEW_YORK),
            datetime(2026, 3, 9, 21, tzinfo=UTC),
        ),
        (
            BusinessCalendar("America/New_York", holiday_country="US", holiday_subdivision="NY"),
            datetime(2026, 10, 30, 18, tzinfo=NEW_YORK),
            datetime(2026, 11, 2, 22, tzinfo=UTC),
        ),
    ],
)
def test_sla_one_business_day_examples(
    calendar: BusinessCalendar, placed: datetime, expected: datetime
) -> None:
    # When the default SLA of one business day applies
    deadline = confirmation_deadline(placed, calendar)
    # Then
    assert deadline == expected


def test_sla_zero_is_the_first_close_after_placement() -> None:
    # Given Monday 2026-03-02 in Bavaria, cut-off 17:00 CET (16:00 UTC)
    # Then before the cut-off it is Monday's close; at or after it, Tuesday's
    monday = datetime(2026, 3, 2, 16, 59, 59, tzinfo=BERLIN)
    assert confirmation_deadline(monday, BAVARIA, 0) == datetime(2026, 3, 2, 16, tzinfo=UTC)
    at_cutoff = datetime(2026, 3, 2, 17, tzinfo=BERLIN)
    assert confirmation_deadline(at_cutoff, BAVARIA, 0) == datetime(2026, 3, 3, 16, tzinfo=UTC)


def test_longer_slas_and_closure_days_count_business_days() -> None:
    # Given Monday 2026-03-02 10:00 in Bavaria
    monday = datetime(2026, 3, 2, 10, tzinfo=BERLIN)
    closed_tuesday = replace(BAVARIA, closure_days=frozenset({date(2026, 3, 3)}))
    # Then SLA 3 is Thursday's close, and a closed Tuesday moves SLA 1 to Wednesday
    assert confirmation_deadline(monday, BAVARIA, 3) == datetime(2026, 3, 5, 16, tzinfo=UTC)
    assert confirmation_deadline(monday, closed_tuesday) == datetime(2026, 3, 4, 16, tzinfo=UTC)


def test_new_year_skips_new_years_day_and_the_subdivisions_epiphany() -> None:
    # Given New Year's Eve 2026 10:00 (a Thursday) and SLA 3
    placed = datetime(2026, 12, 31, 10, tzinfo=BERLIN)
    berlin = replace(BAVARIA, holiday_subdivision="BE")
    # Then Bavaria also skips Epiphany (Wed 2027-01-06); Berlin does not
    assert confirmation_deadline(placed, BAVARIA, 3) == datetime(2027, 1, 7, 16, tzinfo=UTC)
    assert confirmation_deadline(placed, berlin, 3) == datetime(2027, 1, 6, 16, tzinfo=UTC)


def test_a_day_that_starts_at_one_oclock_counts_whole_from_its_first_instant() -> None:
    # Given Santiago, where 2026-09-06 begins at 01:00 (-03), i.e. 04:00 UTC; no weekend
    santiago = BusinessCalendar("America/Santiago", weekend_days=frozenset())
    first_instant = datetime(2026, 9, 6, 4, tzinfo=UTC)
    # Then an order at that instant is due the same day; a microsecond later, the next day
    assert confirmation_deadline(first_instant, santiago) == datetime(2026, 9, 6, 20, tzinfo=UTC)
    later = first_instant + timedelta(microseconds=1)
    assert confirmation_deadline(later, santiago) == datetime(2026, 9, 7, 20, tzinfo=UTC)


def test_a_close_skipped_by_a_dst_gap_is_the_end_of_the_gap() -> None:
    # Given Lord Howe Island, whose clocks jump 02:00 -> 02:30 on 2026-10-04, cut-off 02:00
    calendar = BusinessCalendar("Australia/Lord_Howe", weekend_days=frozenset(), cutoff_hour=2)
    placed = datetime(2026, 10, 3, 12, tzinfo=LORD_HOWE)
    # Then Sunday closes at 02:30 (+11)
    assert confirmation_deadline(placed, calendar, 0) == datetime(2026, 10, 3, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("calendar", "placed", "hours", "expected"),
    [
        # across a night: Mon 15:00 + 4 h = Mon 2 h + Tue 09:00-11:00 (CET)
        (BAVARIA, datetime(2026, 3, 2, 15, tzinfo=BERLIN), 4, datetime(2026, 3, 3, 10, tzinfo=UTC)),
        # across a weekend: Fri 16:00 + 3 h = Mon 11:00; Saturday + 2 h = Mon 11:00
        (BAVARIA, datetime(2026, 3, 6, 16, tzinfo=BERLIN), 3, datetime(2026, 3, 9, 10, tzinfo=UTC)),
        (BAVARIA, datetime(2026, 3, 7, 12, tzinfo=BERLIN), 2, datetime(2026, 3, 9, 10, tzinfo=UTC)),
        # a full day of opening time ends at the close, not at the next opening
        (BAVARIA, datetime(2026, 3, 2, 9, tzinfo=BERLIN), 8, datetime(2026, 3, 2, 16, tzinfo=UTC)),
        # across the spring DST weekend: Mon 10:00 CEST
        (
            BAVARIA,
            datetime(2026, 3, 27, 16, tzinfo=BERLIN),
            2,
            datetime(2026, 3, 30, 8, tzinfo=UTC),
        ),
        # Friday evening before a Monday bank holiday: Tuesday's 8 opening hours
        (
            ENGLAND,
            datetime(2026, 5, 22, 18, tzinfo=LONDON),
            8,
            datetime(2026, 5, 26, 16, tzinfo=UTC),
        ),
    ],
)
def test_sla_hours_examples(
    calendar: BusinessCalendar, placed: datetime, hours: int, expected: datetime
) -> None:
    # When
    deadline = confirmation_deadline(placed, calendar, sla_business_days=5, sla_hours=hours)
    # Then sla_hours wins over the day count
    assert deadline == expected


def test_the_opening_hour_defaults_below_an_early_cutoff() -> None:
    # Then 9 by default, 7 under an 08:00 cut-off, and an explicit hour wins
    assert BAVARIA.opening_hour == 9
    early = replace(BAVARIA, cutoff_hour=8)
    early.validate()
    assert early.opening_hour == 7
    assert replace(BAVARIA, open_hour=6).opening_hour == 6


def test_the_reminder_is_a_share_of_the_elapsed_window() -> None:
    # Given a 24-hour window
    placed = datetime(2026, 3, 2, 10, tzinfo=UTC)
    deadline = datetime(2026, 3, 3, 10, tzinfo=UTC)
    # Then 75 % by default, and the ends at 0 and 1
    assert reminder_time(placed, deadline) == datetime(2026, 3, 3, 4, tzinfo=UTC)
    assert reminder_time(placed.astimezone(BERLIN), deadline, 0.0) == placed
    assert reminder_time(placed, deadline, 1.0) == deadline
    assert reminder_time(placed, deadline).tzinfo is UTC


def test_is_business_day_examples() -> None:
    # Then weekends, holidays (of the subdivision) and closure days are not business days
    assert BAVARIA.is_business_day(date(2026, 3, 3)) is True
    assert BAVARIA.is_business_day(date(2026, 3, 7)) is False
    assert ENGLAND.is_business_day(date(2026, 4, 6)) is False
    assert BAVARIA.is_business_day(date(2027, 1, 6)) is False
    assert replace(BAVARIA, holiday_subdivision="BE").is_business_day(date(2027, 1, 6)) is True
    closed = replace(BAVARIA, closure_days=frozenset({date(2026, 3, 3)}))
    assert closed.is_business_day(date(2026, 3, 3)) is False


def test_next_business_day_and_close_of_examples() -> None:
    # Then the Thursday before Easter 2026 is followed by Easter Tuesday in England
    assert ENGLAND.next_business_day(date(2026, 4, 2)) == date(2026, 4, 7)
    # and the close follows the zone's offset on each side of the DST change (CET, then CEST)
    assert BAVARIA.close_of(date(2026, 3, 27)) == datetime(2026, 3, 27, 16, tzinfo=UTC)
    assert BAVARIA.close_of(date(2026, 3, 30)) == datetime(2026, 3, 30, 15, tzinfo=UTC)


NO_COUNTRY = "not a country the holidays package has a calendar for"
NO_SUBDIVISION = "not a subdivision code or alias of holiday_country in the holidays package"
WEEKEND = "must be a proper subset of 0-6"
CUTOFF = "must be 1-23 (the local hour the day closes)"


@pytest.mark.parametrize(
    ("calendar", "setting", "rule"),
    [
        (
            BusinessCalendar("Mars/Olympus_Mons"),
            "timezone",
            "not an IANA time zone name known to this system",
        ),
        (
            replace(BAVARIA, holiday_country="XX", holiday_subdivision=None),
            "holiday_country",
            NO_COUNTRY,
        ),
        (replace(BAVARIA, holiday_country="XX"), "holiday_country", NO_COUNTRY),
        (replace(BAVARIA, holiday_subdivision="ZZ"), "holiday_subdivision", NO_SUBDIVISION),
        # deprecated by the holidays package, so due to be removed
        (replace(BAVARIA, holiday_subdivision="BYP"), "holiday_subdivision", NO_SUBDIVISION),
        (replace(BAVARIA, holiday_country=None), "holiday_subdivision", "needs a holiday_country"),
        (replace(BAVARIA, cutoff_hour=0), "cutoff_hour", CUTOFF),
        (replace(BAVARIA, cutoff_hour=24), "cutoff_hour", CUTOFF),
        (replace(BAVARIA, open_hour=17), "open_hour", "must be 0-16 (before the cut-off)"),
        (replace(BAVARIA, weekend_days=frozenset(range(7))), "weekend_days", WEEKEND),
        (replace(BAVARIA, weekend_days=frozenset({7})), "weekend_days", WEEKEND),
    ],
)
def test_validate_names_the_bad_setting(
    calendar: BusinessCalendar, setting: str, rule: str
) -> None:
    # When
    with pytest.raises(CalendarSettingError) as caught:
        calendar.validate()
    # Then the error names the setting, and says why without repeating the value
    assert caught.value.setting == setting
    assert str(caught.value) == f"{setting}: {rule}"
    assert caught.value.rule == rule
    assert isinstance(caught.value, ValueError)


def test_validate_accepts_subdivision_aliases_and_calendars_without_holidays() -> None:
    # Then an alias the holidays package knows, and no holiday calendar at all, are fine
    replace(ENGLAND, holiday_subdivision="England").validate()
    replace(BAVARIA, holiday_country=None, holiday_subdivision=None).validate()
    BusinessCalendar("UTC", cutoff_hour=1).validate()
    BusinessCalendar("UTC", cutoff_hour=23).validate()


def test_bad_arguments_are_refused() -> None:
    # Given a naive time, negative SLAs, a share outside 0-1 and an inverted window
    naive = datetime(2026, 3, 2, 10)  # noqa: DTZ001
    aware = datetime(2026, 3, 2, 10, tzinfo=UTC)
    # Then each is a ValueError
    with pytest.raises(ValueError, match="placed_at must be timezone-aware"):
        confirmation_deadline(naive, BAVARIA)
    with pytest.raises(ValueError, match="sla_business_days must be >= 0"):
        confirmation_deadline(aware, BAVARIA, -1)
    with pytest.raises(ValueError, match="sla_hours must be >= 0"):
        confirmation_deadline(aware, BAVARIA, sla_hours=-1)
    with pytest.raises(ValueError, match="share must be within 0-1"):
        reminder_time(aware, aware, 1.5)
    with pytest.raises(ValueError, match="deadline is before placed_at"):
        reminder_time(aware, aware - timedelta(seconds=1))
    with pytest.raises(ValueError, match="unknown holiday calendar 'XX'"):
        confirmation_deadline(
            aware, replace(BAVARIA, holiday_country="XX", holiday_subdivision=None)
        )
