"""Field types shared by the version-1 message models: money, SKUs, order numbers, text, enums.

Every constraint here is part of the public contract and shows up in the published JSON Schema.
"""

from __future__ import annotations

import zoneinfo
from enum import StrEnum
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from models.domain.calendar_settings import FIRST_CUTOFF_HOUR, LAST_CUTOFF_HOUR
from tasks.messages.envelope import NO_SPACE_PATTERN

# Keeps order totals inside a signed 64-bit column and every integer JSON-safe (< 2**53).
MAX_MINOR_UNITS = 10**12
MAX_QUANTITY = 1_000_000
MAX_LINES = 1_000
NOTE_MAX_CHARS = 2_000
REASON_MAX_CHARS = 500

# Free text (notes): like a line, but tab, newline and carriage return are allowed.
_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u0080-\u009f]*$"
_EMAIL_PATTERN = (
    r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f.][^@\s\x00-\x1f\x7f]*\.[^@\s\x00-\x1f\x7f.]+$"
)
_ZONE_PATTERN = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"
# A line of text that does not start or end with whitespace.
_TRIMMED_PATTERN = (
    r"^[^\s\x00-\x1f\x7f\u0080-\u009f]"
    r"(?:[^\x00-\x1f\x7f\u0080-\u009f]*[^\s\x00-\x1f\x7f\u0080-\u009f])?$"
)

# Plain words for the patterns above, used by the generated docs.
PATTERN_WORDS: dict[str, str] = {
    NO_SPACE_PATTERN: "no whitespace or control characters",
    _TEXT_PATTERN: "no control characters except tab and line breaks",
    _TRIMMED_PATTERN: "no control characters; no leading or trailing whitespace",
    _EMAIL_PATTERN: "a simple `local@domain.tld` check",
    _ZONE_PATTERN: "a known IANA zone name",
    r"^[A-Z]{3}$": "3 uppercase letters",
    r"^[A-Z]{2}$": "2 uppercase letters",
}


class PaymentMethod(StrEnum):
    """How an order is paid."""

    STRIPE_CARD = "stripe_card"
    ON_ACCOUNT = "on_account"
    OFFLINE = "offline"
    OTHER = "other"


class FulfillmentStatus(StrEnum):
    """The fulfillment axis of an order (SPEC 1.2)."""

    UNFULFILLED = "unfulfilled"
    PROCESSING = "processing"
    ON_HOLD = "on_hold"
    BACKORDERED = "backordered"
    SHIPPED = "shipped"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


def _check_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # The value itself is not echoed: details never repeat input.
        raise ValueError("not an IANA time zone name known to this system") from None
    return value


def _check_webhook_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL would end up stored and logged; use the signing keys instead.
        raise ValueError("must not contain credentials")
    if parts.fragment:
        raise ValueError("must not contain a fragment")
    return value


def _bounded(max_length: int, pattern: str, min_length: int = 1) -> StringConstraints:
    return StringConstraints(
        strict=True, min_length=min_length, max_length=max_length, pattern=pattern
    )


MinorUnits = Annotated[
    int, Field(strict=True, ge=0, le=MAX_MINOR_UNITS, description="Money in minor units.")
]
SignedMinorUnits = Annotated[int, Field(strict=True, ge=-MAX_MINOR_UNITS, le=MAX_MINOR_UNITS)]
Quantity = Annotated[
    int, Field(strict=True, gt=0, le=MAX_QUANTITY, description="A number of units (> 0).")
]
StockLevel = Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY * 1000)]
Flag = Annotated[bool, Field(strict=True)]
Currency = Annotated[
    str, _bounded(3, r"^[A-Z]{3}$", min_length=3), Field(description="ISO-4217 code, e.g. `EUR`.")
]
Sku = Annotated[str, _bounded(64, NO_SPACE_PATTERN), Field(description="Stock keeping unit.")]
OrderNumber = Annotated[
    str, _bounded(64, NO_SPACE_PATTERN), Field(description="The order number, e.g. `M9681118`.")
]
ExternalId = Annotated[str, _bounded(64, NO_SPACE_PATTERN)]
Email = Annotated[str, _bounded(254, _EMAIL_PATTERN, min_length=3)]
Name = Annotated[str, _bounded(200, _TRIMMED_PATTERN)]
LineText = Annotated[str, _bounded(200, _TRIMMED_PATTERN)]
Note = Annotated[str, _bounded(NOTE_MAX_CHARS, _TEXT_PATTERN, min_length=0)]
Reason = Annotated[str, _bounded(REASON_MAX_CHARS, _TEXT_PATTERN, min_length=0)]
Reference = Annotated[str, _bounded(200, _TRIMMED_PATTERN)]
TrackingNumber = Annotated[str, _bounded(100, NO_SPACE_PATTERN)]
TimeZoneName = Annotated[str, _bounded(64, _ZONE_PATTERN), AfterValidator(_check_zone)]
CountryCode = Annotated[str, _bounded(2, r"^[A-Z]{2}$", min_length=2)]
Subdivision = Annotated[str, _bounded(64, _TRIMMED_PATTERN)]
WebhookUrl = Annotated[
    str, _bounded(2048, NO_SPACE_PATTERN, min_length=8), AfterValidator(_check_webhook_url)
]
PaymentIntentId = Annotated[str, _bounded(255, r"^pi_[A-Za-z0-9_]+$", min_length=4)]
CutoffHour = Annotated[int, Field(strict=True, ge=FIRST_CUTOFF_HOUR, le=LAST_CUTOFF_HOUR)]

NOTE_FIELD = Field(default=None, description="Free text, included in the customer's email.")
NOTIFY_FIELD = Field(default=True, description="Email the customer about the change.")


class MessageData(BaseModel):
    """Base of every message data model; TYPE and VERSION place it in the catalogue.

    A subclass's docstring states the message's effect (it is published in the schema and
    docs). Unknown fields are dropped (never stored or used), so producers may add fields first.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]


class Part(BaseModel):
    """Base of nested objects inside message data (lines, customer): same extra-field rule."""

    model_config = ConfigDict(extra="ignore", frozen=True)
