"""Version-1 message about manufacturers (OEM channels)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from tasks.messages.v1.common import (
    CountryCode,
    Email,
    ExternalId,
    HourOfDay,
    MessageData,
    Name,
    Subdivision,
    TimeZoneName,
    WebhookUrl,
)


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
        description="ISO 3166-1 alpha-2 country of the holiday calendar (`holidays` package)."
    )
    holiday_subdivision: Subdivision | None = Field(
        default=None, description="Subdivision code of the holiday calendar, e.g. `BY`."
    )
    cutoff_hour: HourOfDay = Field(
        description="Local hour (0-23) from which an order counts from the next business day."
    )
    notify_email: Email | None = Field(
        default=None, description="Where order confirmation failure messages are emailed."
    )
    notify_webhook_url: WebhookUrl | None = Field(
        default=None,
        description="http(s) URL that receives signed POSTs; no credentials in the URL.",
    )
