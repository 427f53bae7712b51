"""Version-1 messages about backlog: bulk paid-backlog creation (job 4) and delivery notes."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from tasks.messages.v1.common import (
    MAX_LINES,
    Flag,
    MessageData,
    OrderNumber,
    Part,
    Quantity,
    Reference,
    Sku,
)

MAX_ORDER_NUMBERS = 10_000


class PaidBacklogRequestedV1(MessageData):
    """Creates paid backlog for the named orders, or for every eligible order (job 4)."""

    TYPE = "paid_backlog.requested"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"order_numbers": ["M9681118", "M9681119"], "dry_run": False},
                {"all_eligible": True, "dry_run": True},
            ]
        }
    )

    order_numbers: (
        Annotated[list[OrderNumber], Field(min_length=1, max_length=MAX_ORDER_NUMBERS)] | None
    ) = Field(
        default=None,
        description="Orders to process (unique); give exactly one of this and all_eligible.",
    )
    all_eligible: Flag = Field(
        default=False, description="`true` processes every eligible order instead of a list."
    )
    dry_run: Flag = Field(default=False, description="Report what would happen; change nothing.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.order_numbers is not None) == self.all_eligible:
            raise ValueError("give exactly one of order_numbers (non-empty) or all_eligible: true")
        if self.order_numbers is not None and len(set(self.order_numbers)) != len(
            self.order_numbers
        ):
            raise ValueError("order_numbers must not repeat a number")
        return self


class DeliveryLineV1(Part):
    """A SKU quantity to deliver from the order's backlog."""

    sku: Sku
    quantity: Quantity


class DeliveryNoteRequestedV1(MessageData):
    """Makes a delivery note that consumes backlog SKUs; paid backlog on it is not billed."""

    TYPE = "delivery_note.requested"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "M9681118",
                    "lines": [{"sku": "DRILL-18V", "quantity": 2}],
                    "reference": "DN-2026-0007",
                }
            ]
        }
    )

    number: OrderNumber
    lines: Annotated[list[DeliveryLineV1], Field(min_length=1, max_length=MAX_LINES)] = Field(
        description="SKU quantities to deliver; each SKU at most once."
    )
    reference: Reference | None = Field(default=None, description="The delivery note number.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each sku may appear on only one line")
        return self
