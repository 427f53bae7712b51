"""The status vocabularies of SPEC 1.2 and the payment methods."""

from __future__ import annotations

from enum import StrEnum


class ConfirmationStatus(StrEnum):
    """Confirmation axis: new -> accepted -> confirmed."""

    NEW = "new"
    ACCEPTED = "accepted"
    CONFIRMED = "confirmed"


class FulfillmentStatus(StrEnum):
    """Fulfillment axis."""

    UNFULFILLED = "unfulfilled"
    PROCESSING = "processing"
    ON_HOLD = "on_hold"
    BACKORDERED = "backordered"
    SHIPPED = "shipped"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    """Payment axis, in Shopify's vocabulary."""

    PENDING = "pending"
    AUTHORIZED = "authorized"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"


class PaymentMethod(StrEnum):
    """How an order is paid."""

    STRIPE_CARD = "stripe_card"
    ON_ACCOUNT = "on_account"
    OFFLINE = "offline"
    OTHER = "other"


class BacklogKind(StrEnum):
    """Regular (unbilled) or paid (never billed again) backlog."""

    REGULAR = "regular"
    PAID = "paid"
