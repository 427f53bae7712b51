"""The manufacturer calendar settings the domain accepts: countries, subdivisions and their
aliases, time zones and the cut-off hour, each refusal naming its setting."""

from __future__ import annotations

import pytest

from models.domain.calendar_settings import (
    CalendarSettingError,
    check_cutoff_hour,
    check_holiday_calendar,
    check_holiday_country,
    check_time_zone,
    subdivision_code,
)


@pytest.mark.parametrize(
    ("country", "subdivision", "code"),
    [
        ("DE", "BY", "BY"),
        ("US", "NY", "NY"),
        ("AU", "NSW", "NSW"),
        ("GB", "ENG", "ENG"),
        ("GB", "England", "ENG"),
        ("GB", "Northern Ireland", "NIR"),
        ("AU", "New South Wales", "NSW"),
    ],
)
def test_a_code_or_an_alias_gives_the_code(country: str, subdivision: str, code: str) -> None:
    assert subdivision_code(country, subdivision) == code


@pytest.mark.parametrize(
    ("country", "subdivision", "setting"),
    [
        ("DE", "ZZ", "holiday_subdivision"),
        ("DE", "by", "holiday_subdivision"),
        ("DE", "BYP", "holiday_subdivision"),  # deprecated by the holidays package
        ("US", "ENG", "holiday_subdivision"),
        ("XX", "BY", "holiday_country"),
    ],
)
def test_an_unknown_subdivision_or_country_is_refused_by_name(
    country: str, subdivision: str, setting: str
) -> None:
    with pytest.raises(CalendarSettingError) as caught:
        subdivision_code(country, subdivision)
    assert caught.value.setting == setting


def test_countries_and_calendars_without_a_subdivision() -> None:
    # Then known countries pass, unknown ones are refused by name
    check_holiday_country("DE")
    check_holiday_calendar("AU", None)
    check_holiday_calendar(None, None)
    with pytest.raises(CalendarSettingError) as unknown:
        check_holiday_calendar("XX", None)
    assert str(unknown.value) == (
        "holiday_country: not a country the holidays package has a calendar for"
    )
    with pytest.raises(CalendarSettingError) as orphan:
        check_holiday_calendar(None, "BY")
    assert str(orphan.value) == "holiday_subdivision: needs a holiday_country"


@pytest.mark.parametrize("hour", [1, 15, 23])
def test_cutoff_hours_1_to_23_pass(hour: int) -> None:
    check_cutoff_hour(hour)


@pytest.mark.parametrize("hour", [-1, 0, 24])
def test_other_cutoff_hours_are_refused(hour: int) -> None:
    with pytest.raises(CalendarSettingError) as caught:
        check_cutoff_hour(hour)
    assert str(caught.value) == "cutoff_hour: must be 1-23 (the local hour the day closes)"


@pytest.mark.parametrize("name", ["Mars/Olympus", "../../etc/passwd", "", "America"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(CalendarSettingError) as caught:
        check_time_zone(name)
    assert str(caught.value) == "timezone: not an IANA time zone name known to this system"


def test_known_time_zones_pass() -> None:
    check_time_zone("Europe/Berlin")
    check_time_zone("Australia/Sydney")
