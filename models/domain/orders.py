"""Order rules that need no I/O: totals, initial statuses, when lines may change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.domain.errors import PermanentError
from models.domain.statuses import FulfillmentStatus, PaymentMethod, PaymentStatus

# Lines can no longer change once the goods have left or the order is over.
FROZEN_FULFILLMENT = frozenset(
    {FulfillmentStatus.SHIPPED, FulfillmentStatus.FULFILLED, FulfillmentStatus.CANCELLED}
)


@dataclass(frozen=True)
class LineSpec:
    """An order line as the domain sees it."""

    sku: str
    quantity: int
    unit_price: int
    is_insert: bool = False


def order_total(lines: Iterable[LineSpec]) -> int:
    """Sum of quantity x unit price, in minor units."""
    return sum(line.quantity * line.unit_price for line in lines)


def initial_payment_status(method: PaymentMethod) -> PaymentStatus:
    """A card order arrives with a hold (capture_method=manual); others await payment."""
    if method is PaymentMethod.STRIPE_CARD:
        return PaymentStatus.AUTHORIZED
    return PaymentStatus.PENDING


def check_lines_may_change(
    *, lines_locked: bool, fulfillment: FulfillmentStatus, archived: bool
) -> None:
    """Refuse a line change with the reason, or return."""
    if lines_locked:
        raise PermanentError("lines_locked", "paid backlog exists; the lines are locked")
    if fulfillment in FROZEN_FULFILLMENT:
        raise PermanentError("lines_frozen", f"the order is {fulfillment.value}")
    if archived:
        raise PermanentError("order_archived", "archived orders take no changes")
