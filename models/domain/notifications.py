"""Which status changes the customer hears about, and under which template."""

from __future__ import annotations

from models.domain.statuses import FulfillmentStatus as F
from models.domain.statuses import PaymentStatus as P

PAYMENT_TEMPLATES: dict[P, str] = {
    P.PAID: "payment_paid",
    P.PENDING: "payment_pending",
    P.PARTIALLY_REFUNDED: "payment_refunded",
    P.REFUNDED: "payment_refunded",
}
FULFILLMENT_TEMPLATES: dict[F, str] = {
    F.PROCESSING: "fulfillment_processing",
    F.ON_HOLD: "fulfillment_on_hold",
    F.SHIPPED: "fulfillment_shipped",
    F.CANCELLED: "fulfillment_cancelled",
    F.FULFILLED: "fulfillment_fulfilled",
}
ORDER_CONFIRMED = "order_confirmed"
# Not for customers: the manufacturer hears of a missed deadline, the desk of one coming up.
OEM_CONFIRMATION_FAILURE = "oem_confirmation_failure"
DESK_CONFIRMATION_REMINDER = "desk_confirmation_reminder"
PAYMENT_FAILED = "payment_failed"  # the customer: the card could not be charged
DESK_HOLD_EXPIRING = "desk_hold_expiring"
DESK_HOLD_EXPIRED = "desk_hold_expired"
DESK_CAPTURE_FAILED = "desk_capture_failed"


def payment_template(before: P, after: P) -> str | None:
    """The customer email for a payment-status change, or None when there is none."""
    if before is after:
        return None
    return PAYMENT_TEMPLATES.get(after)


def fulfillment_template(before: F, after: F) -> str | None:
    """The customer email for a fulfillment-status change, or None when there is none."""
    if before is after:
        return None
    return FULFILLMENT_TEMPLATES.get(after)
