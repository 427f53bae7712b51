"""Ledger queries: add up an order's invoices and payments and store what they imply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, select
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
    """Sums over the order's invoices and payments."""
    return ledger_totals_many(session, [order])[order.id]


def ledger_totals_many(session: Session, orders: Sequence[Order]) -> dict[int, LedgerTotals]:
    """`ledger_totals` for many orders in one statement of two grouped, indexed aggregates."""
    ids = [order.id for order in orders]
    invoices = (
        select(
            Invoice.order_id,
            func.sum(Invoice.amount).label("invoiced"),
            func.count(Invoice.id).label("invoices"),
        )
        .where(Invoice.order_id.in_(ids))
        .group_by(Invoice.order_id)
        .subquery()
    )
    payments = (
        select(
            Payment.order_id,
            func.sum(case((Payment.amount > 0, Payment.amount), else_=0)).label("received"),
            func.sum(case((Payment.amount < 0, -Payment.amount), else_=0)).label("refunded"),
        )
        .where(Payment.order_id.in_(ids))
        .group_by(Payment.order_id)
        .subquery()
    )
    query = (
        select(
            Order.id,
            func.coalesce(invoices.c.invoiced, 0),
            func.coalesce(invoices.c.invoices, 0),
            func.coalesce(payments.c.received, 0),
            func.coalesce(payments.c.refunded, 0),
        )
        .outerjoin(invoices, invoices.c.order_id == Order.id)
        .outerjoin(payments, payments.c.order_id == Order.id)
        .where(Order.id.in_(ids))
    )
    sums = {row[0]: tuple(int(value) for value in row[1:]) for row in session.execute(query)}
    totals = {}
    for order in orders:
        invoiced, invoice_count, received, refunded = sums.get(order.id, (0, 0, 0, 0))
        totals[order.id] = LedgerTotals(
            total=order.total,
            invoiced=invoiced,
            has_invoices=invoice_count > 0,
            received=received,
            refunded=refunded,
        )
    return totals


def paid_by_card(session: Session, order_id: int) -> int:
    """What the order holds of Stripe's money, net of Stripe refunds (the most a refund takes:
    money paid by other means is refunded by other means)."""
    query = select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.order_id == order_id, Payment.source == "stripe"
    )
    return int(session.scalar(query) or 0)


def refresh(session: Session, order: Order) -> Refreshed:
    """Recompute and store the order's derived ledger figures (the order row must be locked)."""
    return refresh_many(session, [order])[order.id]


def refresh_many(
    session: Session, orders: Sequence[Order], *, flush: bool = True
) -> dict[int, Refreshed]:
    """`refresh` for many locked orders: one statement for all their sums. `flush=False` when
    every payment and invoice they count is in the database already (Core inserts): the
    orders' pending changes then go out in one UPDATE with these figures, not two."""
    if flush:
        session.flush()
    with session.no_autoflush:
        totals = ledger_totals_many(session, orders)
    changes = {}
    for order in orders:
        ledger = totals[order.id]
        before = PaymentStatus(order.payment_status)
        after = payment_status(ledger, HoldState(order.hold_state))
        order.invoiced = ledger.invoiced
        order.paid = ledger.paid
        order.outstanding_balance = ledger.outstanding
        order.payment_status = after.value
        order.download_allowed = download_allowed(after)
        changes[order.id] = Refreshed(before, after)
    return changes
