"""Version-1 messages about an order's fulfillment: shipping, status, split, cancel, refund."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from tasks.messages.v1.common import (
    NOTE_FIELD,
    NOTIFY_FIELD,
    Flag,
    FulfillmentStatus,
    LineText,
    MessageData,
    Note,
    OrderNumber,
    Reason,
    TrackingNumber,
)

# These two move money, so they have their own (signed) message types.
_STATUSES_WITH_OWN_TYPE = {
    FulfillmentStatus.SHIPPED: "order.shipped",
    FulfillmentStatus.CANCELLED: "order.cancelled",
}


class OrderShippedV1(MessageData):
    """Fulfillment -> `shipped`; captures a card order's PaymentIntent (amount from the DB)."""

    TYPE = "order.shipped"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "M9681118",
                    "tracking_numbers": ["00340434161234567890"],
                    "carrier": "DHL",
                    "note": "Left with the neighbour at no. 12.",
                    "notify_customer": True,
                    "shipped_at": "2026-03-04T14:05:00+01:00",
                }
            ]
        }
    )

    number: OrderNumber
    tracking_numbers: Annotated[list[TrackingNumber], Field(max_length=50)] = Field(
        description="Tracking numbers of the shipment; may be empty (e.g. collected)."
    )
    carrier: LineText | None = Field(default=None, description="Carrier name, e.g. `DHL`.")
    note: Note | None = NOTE_FIELD
    notify_customer: Flag = NOTIFY_FIELD
    shipped_at: AwareDatetime | None = Field(
        default=None, description="When it shipped; the envelope's occurred_at if absent."
    )


class OrderFulfillmentChangedV1(MessageData):
    """Fulfillment axis change; `shipped`/`cancelled` are refused here (use their own types)."""

    TYPE = "order.fulfillment_changed"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "M9681118",
                    "status": "on_hold",
                    "note": "Waiting for the address check.",
                    "notify_customer": True,
                }
            ]
        }
    )

    number: OrderNumber
    status: FulfillmentStatus = Field(
        description="New status; `shipped` and `cancelled` must be sent as `order.shipped` / "
        "`order.cancelled`, which move money and must be signed."
    )
    note: Note | None = NOTE_FIELD
    notify_customer: Flag = NOTIFY_FIELD

    @field_validator("status")
    @classmethod
    def _refuse_money_moving(cls, value: FulfillmentStatus) -> FulfillmentStatus:
        if value in _STATUSES_WITH_OWN_TYPE:
            raise ValueError(
                f"status {value.value} must be sent as {_STATUSES_WITH_OWN_TYPE[value]}"
            )
        return value


class OrderSplitRequestedV1(MessageData):
    """Splits out-of-stock lines into `<number>-backorder`; refused if only inserts are missing."""

    TYPE = "order.split_requested"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"number": "M9681118", "notify_customer": True}]}
    )

    number: OrderNumber
    note: Note | None = NOTE_FIELD
    notify_customer: Flag = NOTIFY_FIELD


class OrderCancelledV1(MessageData):
    """Cancels the order: releases a card hold, or refunds it if already captured."""

    TYPE = "order.cancelled"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "M9681118",
                    "reason": "Customer changed their mind.",
                    "notify_customer": True,
                }
            ]
        }
    )

    number: OrderNumber
    reason: Reason | None = Field(default=None, description="Why; shown to the customer.")
    notify_customer: Flag = NOTIFY_FIELD


class OrderRefundRequestedV1(MessageData):
    """Refunds the whole order (partial refunds are not offered)."""

    TYPE = "order.refund_requested"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"number": "M9681118", "reason": "Damaged in transit.", "notify_customer": True}
            ]
        }
    )

    number: OrderNumber
    reason: Reason | None = Field(default=None, description="Why; shown to the customer.")
    notify_customer: Flag = NOTIFY_FIELD


class OrderArchivedV1(MessageData):
    """Archives the order: it takes no further automatic action."""

    TYPE = "order.archived"
    VERSION = 1
    model_config = ConfigDict(json_schema_extra={"examples": [{"number": "M9681118"}]})

    number: OrderNumber
