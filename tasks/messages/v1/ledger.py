"""Version-1 messages that write to an order's ledger: invoices and manual payments."""

from __future__ import annotations

from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from tasks.messages.v1.common import (
    NOTE_FIELD,
    NOTIFY_FIELD,
    Currency,
    Flag,
    MessageData,
    MinorUnits,
    Note,
    OrderNumber,
    PaymentMethod,
    Reference,
    SignedMinorUnits,
)

_CURRENCY_FIELD = Field(
    default=None, description="If given, must equal the order's currency (a safety check)."
)


class InvoiceIssuedV1(MessageData):
    """Records an invoice: the order's amount due becomes the sum of its invoices."""

    TYPE = "invoice.issued"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "M9681118",
                    "amount": 25_800,
                    "currency": "EUR",
                    "reference": "INV-2026-00042",
                    "issued_at": "2026-03-04T16:00:00Z",
                }
            ]
        }
    )

    number: OrderNumber
    amount: MinorUnits = Field(description="Invoiced amount in minor units (>= 0).")
    currency: Currency | None = _CURRENCY_FIELD
    reference: Reference | None = Field(default=None, description="The invoice number.")
    issued_at: AwareDatetime | None = Field(
        default=None, description="Invoice date; the envelope's occurred_at if absent."
    )


class PaymentRecordedV1(MessageData):
    """Records a manual payment ("mark as paid"), or a negative amount refunded outside Stripe."""

    TYPE = "payment.recorded"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "M9681118",
                    "amount": 25_800,
                    "currency": "EUR",
                    "method": "offline",
                    "reference": "Bank transfer 2026-03-05",
                    "at": "2026-03-05T10:00:00Z",
                    "note": "Thank you for your payment.",
                    "notify_customer": True,
                }
            ]
        }
    )

    number: OrderNumber
    amount: SignedMinorUnits = Field(
        description="Minor units; negative for money refunded outside Stripe; never 0."
    )
    currency: Currency | None = _CURRENCY_FIELD
    method: PaymentMethod = Field(description="How the money was paid.")
    reference: Reference | None = Field(default=None, description="External reference.")
    at: AwareDatetime = Field(description="When the money moved.")
    note: Note | None = NOTE_FIELD
    notify_customer: Flag = NOTIFY_FIELD

    @field_validator("amount")
    @classmethod
    def _refuse_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("amount must not be 0")
        return value
