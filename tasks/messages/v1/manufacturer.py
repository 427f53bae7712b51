"""Version-1 message about manufacturers (OEM channels)."""

from __future__ import annotations

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from models.domain.calendar_settings import (
    CalendarSettingError,
    check_holiday_country,
    subdivision_code,
)
from tasks.messages.v1.common import (
    CountryCode,
    CutoffHour,
    Email,
    ExternalId,
    MessageData,
    Name,
    Subdivision,
    TimeZoneName,
    WebhookUrl,
)

# The width of the manufacturers.holiday_subdivision column; of the holidays package's codes,
# only BR's `São Paulo Capital` is longer (aliases are stored as their codes).
SUBDIVISION_MAX_CHARS = 16


class ManufacturerUpsertedV1(MessageData):
    """Creates or updates a manufacturer (OEM): its confirmation SLA, calendar and channel."""

    TYPE = "manufacturer.upserted"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "oem-acme",
                    "name": "ACME Tools GmbH",
                    "sla_business_days": 1,
                    "timezone": "Europe/Berlin",
                    "holiday_country": "DE",
                    "holiday_subdivision": "BY",
                    "cutoff_hour": 15,
                    "notify_email": "orders@acme.example",
                    "notify_webhook_url": "https://acme.example/hooks/orderflow",
                }
            ]
        }
    )

    id: ExternalId = Field(description="The manufacturer's id, referenced by orders.")
    name: Name = Field(description="Display name.")
    sla_business_days: int = Field(
        default=1,
        strict=True,
        ge=0,
        le=30,
        description="Business days the OEM has to confirm an order (0 = same business day).",
    )
    timezone: TimeZoneName = Field(description="IANA time zone, e.g. `Europe/Berlin`.")
    holiday_country: CountryCode = Field(
        description="ISO 3166-1 alpha-2 country of the holiday calendar; the `holidays` package "
        "must have a calendar for it."
    )
    holiday_subdivision: Subdivision | None = Field(
        default=None,
        description="Subdivision of the holiday calendar: a current code the `holidays` package "
        "has for that country (e.g. `BY`), or an alias of one (e.g. `England`, stored as `ENG`).",
    )
    cutoff_hour: CutoffHour = Field(
        description="Local hour (1-23) at which the business day closes: an order placed at or "
        "after it counts from the next business day."
    )
    notify_email: Email | None = Field(
        default=None, description="Where order confirmation failure messages are emailed."
    )
    notify_webhook_url: WebhookUrl | None = Field(
        default=None,
        description="http(s) URL that receives signed POSTs; no credentials in the URL.",
    )

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        try:
            check_holiday_country(value)
        except CalendarSettingError as error:
            # The rule only: pydantic's location already names the field.
            raise ValueError(error.rule) from None
        return value

    @field_validator("holiday_subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("holiday_country")
        if value is None or country is None:
            return value  # a bad country is reported on its own field
        try:
            code = subdivision_code(country, value)
        except CalendarSettingError as error:
            raise ValueError(error.rule) from None
        if len(code) > SUBDIVISION_MAX_CHARS:
            raise ValueError(f"codes longer than {SUBDIVISION_MAX_CHARS} characters are not stored")
        return code
