"""The calendar settings a manufacturer may have (pure): checked at the door by the message
schema, and again when a stored row is used, so a row stored before the checks is refused by name.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The cut-off is the hour the business day closes. At 0 it would close at its first instant:
# every order would count from the next business day and every deadline would fall at
# midnight. 24 is no hour of a day (it is the next day's 0).
FIRST_CUTOFF_HOUR = 1
LAST_CUTOFF_HOUR = 23


class CalendarSettingError(ValueError):
    """A setting the business calendar cannot use: `setting` is the field's name, `rule` says
    what is wrong without repeating the value."""

    def __init__(self, setting: str, rule: str) -> None:
        super().__init__(f"{setting}: {rule}")
        self.setting = setting
        self.rule = rule


def check_time_zone(name: str) -> None:
    """Refuse a time zone name zoneinfo does not know."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        rule = "not an IANA time zone name known to this system"
        raise CalendarSettingError("timezone", rule) from None


def check_cutoff_hour(hour: int) -> None:
    """Refuse a cut-off outside FIRST_CUTOFF_HOUR-LAST_CUTOFF_HOUR."""
    if not FIRST_CUTOFF_HOUR <= hour <= LAST_CUTOFF_HOUR:
        rule = f"must be {FIRST_CUTOFF_HOUR}-{LAST_CUTOFF_HOUR} (the local hour the day closes)"
        raise CalendarSettingError("cutoff_hour", rule)


def check_holiday_country(country: str) -> None:
    """Refuse a country the `holidays` package has no calendar for."""
    if _entity(country) is None:
        rule = "not a country the holidays package has a calendar for"
        raise CalendarSettingError("holiday_country", rule)


def subdivision_code(country: str, subdivision: str) -> str:
    """The code of `subdivision`, given as a code (`ENG`) or an alias (`England`) of one of
    `country`'s subdivisions in the `holidays` package; codes it only keeps as deprecated are
    refused, as they are due to be removed."""
    check_holiday_country(country)
    entity = _entity(country)
    if subdivision in entity.subdivisions:
        return subdivision
    code = entity.subdivisions_aliases.get(subdivision)
    if code is None:
        rule = "not a subdivision code or alias of holiday_country in the holidays package"
        raise CalendarSettingError("holiday_subdivision", rule)
    return str(code)


def check_holiday_calendar(country: str | None, subdivision: str | None) -> None:
    """Refuse a holiday calendar the `holidays` package cannot build."""
    if country is None:
        if subdivision is not None:
            raise CalendarSettingError("holiday_subdivision", "needs a holiday_country")
        return
    if subdivision is None:
        check_holiday_country(country)
    else:
        subdivision_code(country, subdivision)


@lru_cache(maxsize=512)
def _entity(country: str) -> Any:
    """The `holidays` class of `country` (its subdivisions and their aliases), or None."""
    # Imported here: `holidays` takes a fifth of a second to import, and the message
    # catalogue, loaded by every command, needs it only to check a manufacturer.
    import holidays

    try:
        return type(holidays.country_holidays(country))
    except NotImplementedError:
        return None
