"""Version-1 `stripe.event`: a Stripe webhook event, forwarded after its signature was checked.

Only what is needed to find and re-fetch the object is kept; the handler re-reads it from
Stripe before recording anything, so nothing here is trusted as payment state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from tasks.messages.envelope import NO_SPACE_PATTERN
from tasks.messages.v1.common import Flag, MessageData, Part


def _text(max_length: int, pattern: str, min_length: int = 1) -> StringConstraints:
    return StringConstraints(
        strict=True, min_length=min_length, max_length=max_length, pattern=pattern
    )


MetadataKey = Annotated[str, _text(40, r"^[^\x00-\x1f\x7f\[\]]+$")]
MetadataValue = Annotated[str, _text(500, r"^[^\x00-\x1f\x7f]*$", min_length=0)]


class StripeObjectV1(Part):
    """The event's object, reduced to what identifies it."""

    id: Annotated[str, _text(255, NO_SPACE_PATTERN)] = Field(description="e.g. `pi_...`.")
    object: Annotated[str, _text(64, r"^[a-z_.]+$")] = Field(
        description="Stripe object kind, e.g. `payment_intent`, `charge`."
    )
    metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=50)] | None = Field(
        default=None, description="The object's metadata (e.g. `order_number`)."
    )


class StripeEventDataV1(Part):
    """Stripe's `data` member of an event."""

    object: StripeObjectV1 = Field(
        description="Only `id`, `object` and `metadata` are read. Other members are ignored, "
        "but a float anywhere refuses the message, so send just these."
    )


class StripeEventV1(MessageData):
    """Reconciles payment state from a verified Stripe webhook event (re-checked with Stripe)."""

    TYPE = "stripe.event"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "evt_3PExample000001",
                    "type": "payment_intent.amount_capturable_updated",
                    "created": 1772442900,
                    "livemode": False,
                    "api_version": "2024-06-20",
                    "data": {
                        "object": {
                            "id": "pi_3PExample000001",
                            "object": "payment_intent",
                            "metadata": {"order_number": "M9681118"},
                        }
                    },
                }
            ]
        }
    )

    id: Annotated[str, _text(255, r"^evt_[A-Za-z0-9_]+$", min_length=5)] = Field(
        description="Stripe event id; events are deduplicated by it."
    )
    type: Annotated[str, _text(100, r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")] = Field(
        description="Stripe event type, e.g. `payment_intent.succeeded`."
    )
    created: Annotated[int, Field(strict=True, ge=0, le=10**11)] = Field(
        description="Unix time in seconds, as Stripe sends it."
    )
    livemode: Flag = Field(description="Whether the event is from live mode.")
    api_version: Annotated[str, _text(64, NO_SPACE_PATTERN)] | None = Field(
        default=None, description="Stripe API version the event was rendered with."
    )
    account: Annotated[str, _text(255, r"^acct_[A-Za-z0-9_]+$", min_length=6)] | None = Field(
        default=None, description="Connected account id, for Connect events."
    )
    data: StripeEventDataV1

    @property
    def created_at(self) -> datetime:
        """`created` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.created, tz=UTC)
