"""Order rules that need no I/O: totals, initial statuses, when lines may change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.domain.errors import PermanentError
from models.domain.ledger import HoldState
from models.domain.statuses import FulfillmentStatus, PaymentMethod

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


def initial_hold(method: PaymentMethod) -> HoldState:
    """A card order's PaymentIntent holds the amount from the start."""
    return HoldState.HELD if method is PaymentMethod.STRIPE_CARD else HoldState.NONE


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


def check_billable(*, total: int, invoiced: int, more: int = 0) -> None:
    """Refuse when invoices would exceed what the order owes, its total (SPEC 1.4, I5)."""
    if invoiced + more > total:
        raise PermanentError(
            "invoice_exceeds_owed",
            f"the order owes {total}; invoiced {invoiced}"
            + (f", and {more} more" if more else "")
            + " would exceed it",
        )
