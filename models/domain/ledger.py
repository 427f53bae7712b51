"""Ledger rules of SPEC 1.4: balances and the payment status, derived from the ledger alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from models.domain.statuses import PaymentStatus


class HoldState(StrEnum):
    """The card hold behind an order, if any."""

    NONE = "none"  # not a card order, or no hold yet
    HELD = "held"  # authorized, capturable
    RELEASED = "released"  # cancelled before any capture
    EXPIRED = "expired"  # lapsed uncaptured: the order needs a new payment
    CAPTURED = "captured"


@dataclass(frozen=True)
class LedgerTotals:
    """What an order's ledger adds up to, in minor units of its currency."""

    total: int  # the order total
    invoiced: int  # sum of invoices
    has_invoices: bool
    received: int  # sum of positive payments
    refunded: int  # sum of refunds, as a positive number

    @property
    def paid(self) -> int:
        """Net amount paid: received minus refunded."""
        return self.received - self.refunded

    @property
    def due(self) -> int:
        """The amount due: invoiced once there are invoices, the order total before."""
        return self.invoiced if self.has_invoices else self.total

    @property
    def outstanding(self) -> int:
        """Invoiced minus paid; negative when overpaid or paid before invoicing."""
        return self.invoiced - self.paid


def totals(total: int, invoices: Iterable[int], payments: Iterable[int]) -> LedgerTotals:
    """Add up invoices and signed payments (refunds negative)."""
    invoice_list = list(invoices)
    payment_list = list(payments)
    return LedgerTotals(
        total=total,
        invoiced=sum(invoice_list),
        has_invoices=bool(invoice_list),
        received=sum(p for p in payment_list if p > 0),
        refunded=-sum(p for p in payment_list if p < 0),
    )


def payment_status(ledger: LedgerTotals, hold: HoldState) -> PaymentStatus:
    """The payment status the rules give for this ledger and hold."""
    if ledger.received == 0:
        if hold is HoldState.HELD:
            return PaymentStatus.AUTHORIZED
        if hold in (HoldState.RELEASED, HoldState.EXPIRED):
            return PaymentStatus.VOIDED
        return PaymentStatus.PENDING
    if ledger.refunded > 0:
        return PaymentStatus.REFUNDED if ledger.paid <= 0 else PaymentStatus.PARTIALLY_REFUNDED
    if ledger.paid < ledger.due:
        return PaymentStatus.PARTIALLY_PAID
    if ledger.paid == ledger.due:
        return PaymentStatus.PAID
    return PaymentStatus.OVERPAID


def download_allowed(status: PaymentStatus) -> bool:
    """Digital goods may be downloaded only once the order is (fully) paid."""
    return status in (PaymentStatus.PAID, PaymentStatus.OVERPAID)


def balances_by_currency(outstanding: Iterable[tuple[str, int]]) -> dict[str, int]:
    """A customer's balance: outstanding balances summed per currency, never across them."""
    result: dict[str, int] = {}
    for currency, amount in outstanding:
        result[currency] = result.get(currency, 0) + amount
    return result
