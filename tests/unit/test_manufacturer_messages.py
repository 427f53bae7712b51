"""`manufacturer.upserted` at the door: calendar settings the business calendar cannot use are
refused as schema violations naming the field (issue 19, D8); usable ones decode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tasks.messages.catalogue import ReasonCode, RejectedMessage, decode
from tasks.messages.v1 import ManufacturerUpsertedV1

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "manufacturer.upserted" / "v1.json"
LIMIT = 64 * 1024
NO_SUBDIVISION = (
    "Value error, not a subdivision code or alias of holiday_country in the holidays package"
)
NO_COUNTRY = "Value error, not a country the holidays package has a calendar for"


def _raw(**changes: Any) -> bytes:
    envelope = json.loads(SAMPLE.read_text("utf-8"))
    envelope["data"].update(changes)
    return json.dumps(envelope, ensure_ascii=False).encode("utf-8")


def _decoded(**changes: Any) -> ManufacturerUpsertedV1:
    data = decode(_raw(**changes), LIMIT).data
    assert isinstance(data, ManufacturerUpsertedV1)
    return data


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"holiday_subdivision": "ZZ"}, f"data.holiday_subdivision: {NO_SUBDIVISION}"),
        ({"holiday_subdivision": "by"}, f"data.holiday_subdivision: {NO_SUBDIVISION}"),
        ({"holiday_subdivision": "BYP"}, f"data.holiday_subdivision: {NO_SUBDIVISION}"),
        (
            {"holiday_country": "US", "holiday_subdivision": "BY"},
            f"data.holiday_subdivision: {NO_SUBDIVISION}",
        ),
        ({"holiday_country": "XX"}, f"data.holiday_country: {NO_COUNTRY}"),
        (
            {"holiday_country": "XX", "holiday_subdivision": None},
            f"data.holiday_country: {NO_COUNTRY}",
        ),
        (
            {"holiday_country": "BR", "holiday_subdivision": "São Paulo Capital"},
            "data.holiday_subdivision: Value error, codes longer than 16 characters are not stored",
        ),
        (
            {"timezone": "Europe/Atlantis"},
            "data.timezone: Value error, not an IANA time zone name known to this system",
        ),
        ({"cutoff_hour": 0}, "data.cutoff_hour: Input should be greater than or equal to 1"),
        ({"cutoff_hour": 24}, "data.cutoff_hour: Input should be less than or equal to 23"),
    ],
)
def test_unusable_calendar_settings_are_refused_naming_the_field(
    changes: dict[str, Any], detail: str
) -> None:
    # When the sample manufacturer arrives with one unusable setting
    with pytest.raises(RejectedMessage) as caught:
        decode(_raw(**changes), LIMIT)
    # Then it is a schema violation whose detail names that field, and only that one
    assert caught.value.reason_code is ReasonCode.SCHEMA_VIOLATION
    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("country", "subdivision", "zone"),
    [
        ("DE", "BY", "Europe/Berlin"),
        ("US", "NY", "America/New_York"),
        ("AU", "NSW", "Australia/Sydney"),
        ("GB", "ENG", "Europe/London"),
        ("FR", None, "Europe/Paris"),
    ],
)
def test_usable_calendars_decode_as_sent(country: str, subdivision: str | None, zone: str) -> None:
    # When
    data = _decoded(holiday_country=country, holiday_subdivision=subdivision, timezone=zone)
    # Then
    assert (data.holiday_country, data.holiday_subdivision, data.timezone) == (
        country,
        subdivision,
        zone,
    )


@pytest.mark.parametrize(
    ("country", "alias", "code"),
    [("GB", "England", "ENG"), ("AU", "New South Wales", "NSW"), ("GB", "Scotland", "SCT")],
)
def test_a_subdivision_alias_is_kept_as_its_code(country: str, alias: str, code: str) -> None:
    # When a manufacturer names its subdivision by an alias the holidays package knows
    data = _decoded(holiday_country=country, holiday_subdivision=alias)
    # Then the message carries the code, which is what is stored
    assert data.holiday_subdivision == code


@pytest.mark.parametrize("hour", [1, 23])
def test_cutoff_hours_at_the_ends_of_the_range_decode(hour: int) -> None:
    assert _decoded(cutoff_hour=hour).cutoff_hour == hour


def test_the_golden_sample_still_decodes_unchanged() -> None:
    # Then the sample keeps its Bavarian calendar and 15:00 cut-off
    data = decode(SAMPLE.read_bytes(), LIMIT).data
    assert isinstance(data, ManufacturerUpsertedV1)
    assert (data.holiday_country, data.holiday_subdivision, data.cutoff_hour) == ("DE", "BY", 15)


def test_the_published_schema_states_the_cutoff_range() -> None:
    # When the model's JSON Schema is built
    cutoff = ManufacturerUpsertedV1.model_json_schema()["properties"]["cutoff_hour"]
    # Then it says 1-23
    assert (cutoff["minimum"], cutoff["maximum"]) == (1, 23)
