"""Ledger and delivery views: `export payments`, `export notifications`, `customer show`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.commerce import Customer, Order, Payment
from models.db.machinery import Notification
from models.domain.ledger import balances_by_currency

PAYMENT_COLUMNS = ("number", "amount", "currency", "method", "source", "reference", "at")
EXPORT_CHUNK = 1000


def iter_payments(session: Session) -> Iterator[dict[str, Any]]:
    """Every ledger entry in recording order, streamed in chunks."""
    query = (
        select(
            Order.number,
            Payment.amount,
            Payment.currency,
            Payment.method,
            Payment.source,
            Payment.reference,
            Payment.at,
        )
        .join(Order, Order.id == Payment.order_id)
        .order_by(Payment.id)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    for number, amount, currency, method, source, reference, at in session.execute(query):
        yield {
            "number": number,
            "amount": amount,
            "currency": currency,
            "method": method,
            "source": source,
            "reference": reference,
            "at": at.isoformat(),
        }


def customer_details(session: Session, customer_id: str) -> dict[str, Any] | None:
    """A customer, their orders' balances, and the balance per currency."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        return None
    orders = session.execute(
        select(Order.number, Order.currency, Order.outstanding_balance, Order.payment_status)
        .where(Order.customer_id == customer_id)
        .order_by(Order.id)
    ).all()
    return {
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "balance": balances_by_currency((o.currency, o.outstanding_balance) for o in orders),
        "orders": [
            {
                "number": o.number,
                "currency": o.currency,
                "outstanding_balance": o.outstanding_balance,
                "payment_status": o.payment_status,
            }
            for o in orders
        ],
    }


NOTIFICATION_COLUMNS = ("number", "kind", "recipient", "status", "attempts", "last_error")


def iter_notifications(session: Session) -> Iterator[dict[str, Any]]:
    """Every notification with its delivery state, streamed in chunks."""
    query = (
        select(
            Order.number,
            Notification.kind,
            Notification.recipient,
            Notification.status,
            Notification.attempts,
            Notification.last_error,
        )
        .outerjoin(Order, Order.id == Notification.order_id)
        .order_by(Notification.id)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    for row in session.execute(query):
        yield dict(zip(NOTIFICATION_COLUMNS, row, strict=True))
