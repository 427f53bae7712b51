"""Version-1 messages that create an order, move its confirmation axis or replace its lines."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AwareDatetime, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from tasks.messages.v1.common import (
    MAX_LINES,
    MAX_MINOR_UNITS,
    Currency,
    Email,
    ExternalId,
    Flag,
    MessageData,
    MinorUnits,
    Name,
    OrderNumber,
    Part,
    PaymentIntentId,
    PaymentMethod,
    Quantity,
    Reference,
    Sku,
)

_LINE_EXAMPLE: JsonDict = {
    "sku": "DRILL-18V",
    "quantity": 2,
    "unit_price": 12_900,
    "is_insert": False,
}
_INSERT_EXAMPLE: JsonDict = {"sku": "LEAFLET-DE", "quantity": 1, "unit_price": 0, "is_insert": True}


class CustomerV1(Part):
    """The customer an order belongs to."""

    id: ExternalId = Field(description="The customer's id in the producing system.")
    email: Email = Field(description="Where customer notifications go.")
    name: Name = Field(description="Used in the salutation of emails.")


class OrderLineV1(Part):
    """One order line; SKUs are unique within an order."""

    sku: Sku
    quantity: Quantity
    unit_price: MinorUnits = Field(description="Price of one unit in minor units of the currency.")
    is_insert: Flag = Field(default=False, description="A leaflet or sample packed with the goods.")
    is_digital: Flag = Field(
        default=False,
        description="Digital goods: downloadable only once the order is paid.",
    )


OrderLines = Annotated[list[OrderLineV1], Field(min_length=1, max_length=MAX_LINES)]


def check_lines(lines: list[OrderLineV1]) -> None:
    """Refuse duplicate SKUs and totals that do not fit the ledger's bounds."""
    skus = [line.sku for line in lines]
    if len(set(skus)) != len(skus):
        raise ValueError("each sku may appear on only one line")
    if sum(line.quantity * line.unit_price for line in lines) > MAX_MINOR_UNITS:
        raise ValueError(f"order total exceeds {MAX_MINOR_UNITS} minor units")


class OrderPlacedV1(MessageData):
    """Stores the order and computes its confirmation deadline from its manufacturer's SLA."""

    TYPE = "order.placed"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "M9681118",
                    "customer": {"id": "C-1001", "email": "ada@example.com", "name": "Ada B."},
                    "manufacturer_id": "oem-acme",
                    "currency": "EUR",
                    "lines": [_LINE_EXAMPLE, _INSERT_EXAMPLE],
                    "payment_method": "stripe_card",
                    "stripe_payment_intent_id": "pi_3PExample000001",
                    "placed_at": "2026-03-02T09:15:00+01:00",
                }
            ]
        }
    )

    number: OrderNumber
    customer: CustomerV1 = Field(description="Created or updated with the order.")
    manufacturer_id: ExternalId = Field(description="Id of a manufacturer (upserted before).")
    currency: Currency
    lines: OrderLines = Field(description="The order's lines; each SKU at most once.")
    payment_method: PaymentMethod = Field(description="How the order is paid.")
    stripe_payment_intent_id: PaymentIntentId | None = Field(
        default=None,
        description="Required for `stripe_card` (created with capture_method=manual); "
        "refused for other methods.",
    )
    placed_at: AwareDatetime = Field(description="When the order was placed (with offset).")
    capture_before: AwareDatetime | None = Field(
        default=None,
        description="When the card hold lapses, as Stripe reported it to the storefront "
        "(the charge's `payment_method_details.card.capture_before`); only for `stripe_card`, "
        "after `placed_at`. Known here, the hold is watched from the start and a capture does "
        "not read the PaymentIntent first.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        check_lines(self.lines)
        is_card = self.payment_method is PaymentMethod.STRIPE_CARD
        if is_card and self.stripe_payment_intent_id is None:
            raise ValueError("stripe_payment_intent_id is required for stripe_card orders")
        if not is_card and self.stripe_payment_intent_id is not None:
            raise ValueError("stripe_payment_intent_id is only allowed for stripe_card orders")
        if self.capture_before is not None:
            if not is_card:
                raise ValueError("capture_before is only allowed for stripe_card orders")
            if self.capture_before <= self.placed_at:
                raise ValueError("capture_before must be later than placed_at")
        return self


class OrderAcceptedV1(MessageData):
    """Confirmation axis: the manufacturer accepted the order (`new` -> `accepted`)."""

    TYPE = "order.accepted"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"number": "M9681118", "at": "2026-03-02T11:00:00Z"}]}
    )

    number: OrderNumber
    at: AwareDatetime = Field(description="When the manufacturer accepted it.")


class OrderConfirmedV1(MessageData):
    """Confirmation axis: the manufacturer confirmed the order ("OC confirmed"), possibly late."""

    TYPE = "order.confirmed"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"number": "M9681118", "at": "2026-03-03T08:30:00Z", "reference": "OC-55120"}
            ]
        }
    )

    number: OrderNumber
    at: AwareDatetime = Field(description="When the manufacturer confirmed it.")
    reference: Reference | None = Field(
        default=None, description="The manufacturer's order confirmation (OC) number."
    )


class OrderLinesChangedV1(MessageData):
    """Replaces the order's lines; refused once the order has paid backlog (lines locked)."""

    TYPE = "order.lines_changed"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "M9681118",
                    "lines": [{**_LINE_EXAMPLE, "quantity": 3}, _INSERT_EXAMPLE],
                }
            ]
        }
    )

    number: OrderNumber
    lines: OrderLines = Field(description="The complete new set of lines.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        check_lines(self.lines)
        return self
