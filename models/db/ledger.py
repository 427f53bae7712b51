"""Ledger queries: add up an order's invoices and payments and store what they imply."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select, true
from sqlalchemy.orm import Session

from models.db.commerce import Invoice, Order, Payment
from models.domain.ledger import HoldState, LedgerTotals, download_allowed, payment_status
from models.domain.statuses import PaymentStatus


@dataclass(frozen=True)
class Refreshed:
    """The payment status before and after a ledger change."""

    before: PaymentStatus
    after: PaymentStatus

    @property
    def changed(self) -> bool:
        """Whether the status moved."""
        return self.before is not self.after


def ledger_totals(session: Session, order: Order) -> LedgerTotals:
    """Sums over the order's invoices and payments: one statement of two indexed aggregates."""
    invoices = (
        select(
            func.coalesce(func.sum(Invoice.amount), 0).label("invoiced"),
            func.count(Invoice.id).label("invoices"),
        )
        .where(Invoice.order_id == order.id)
        .subquery()
    )
    payments = (
        select(
            func.coalesce(
                func.sum(case((Payment.amount > 0, Payment.amount), else_=0)), 0
            ).label("received"),
            func.coalesce(
                func.sum(case((Payment.amount < 0, -Payment.amount), else_=0)), 0
            ).label("refunded"),
        )
        .where(Payment.order_id == order.id)
        .subquery()
    )
    invoiced, invoice_count, received, refunded = session.execute(
        select(*invoices.c, *payments.c).select_from(invoices.join(payments, true()))
    ).one()
    return LedgerTotals(
        total=order.total,
        invoiced=int(invoiced),
        has_invoices=int(invoice_count) > 0,
        received=int(received),
        refunded=int(refunded),
    )


def refresh(session: Session, order: Order) -> Refreshed:
    """Recompute and store the order's derived ledger figures (the order row must be locked)."""
    session.flush()
    ledger = ledger_totals(session, order)
    before = PaymentStatus(order.payment_status)
    after = payment_status(ledger, HoldState(order.hold_state))
    order.invoiced = ledger.invoiced
    order.paid = ledger.paid
    order.outstanding_balance = ledger.outstanding
    order.payment_status = after.value
    order.download_allowed = download_allowed(after)
    return Refreshed(before, after)
