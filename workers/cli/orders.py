"""`orderflow order show` and `orderflow export orders`: read-only views of the database."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from models.db import notifications
from models.db.commerce import Order, Payment
from models.db.orders import find_order, order_lines, timeline
from models.domain.backorders import BACKORDER_SUFFIX
from workers.cli import backorders

ORDER_COLUMNS = (
    "number",
    "parent_number",
    "customer_id",
    "manufacturer_id",
    "currency",
    "total",
    "confirmation_status",
    "confirmation_deadline",
    "confirmation_overdue",
    "fulfillment_status",
    "payment_status",
    "invoiced",
    "paid",
    "outstanding_balance",
    "archived",
    "lines_locked",
    "download_allowed",
)
EXPORT_CHUNK = 1000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def order_row(order: Order, parent_number: str | None) -> dict[str, Any]:
    """The export columns of one order."""
    row = {column: getattr(order, column, None) for column in ORDER_COLUMNS}
    row["parent_number"] = parent_number
    row["confirmation_deadline"] = _iso(order.confirmation_deadline)
    return row


def iter_orders(session: Session) -> Iterator[dict[str, Any]]:
    """Every order in number order, streamed in chunks (constant memory for any size)."""
    parent = aliased(Order)
    query = (
        select(Order, parent.number)
        .outerjoin(parent, Order.parent_id == parent.id)
        .order_by(Order.id)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    for order, parent_number in session.execute(query):
        yield order_row(order, parent_number)
        session.expunge(order)


def write_rows(
    rows: Iterator[dict[str, Any]], columns: tuple[str, ...], fmt: str, out: TextIO
) -> int:
    """Write rows as CSV (with a header) or JSON lines; returns how many."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
        return count
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def _deadline(order: Order) -> dict[str, Any]:
    # The breach is kept, with when the scan found it, after a late confirmation.
    return {
        "deadline_breached": order.confirmation_overdue,
        "deadline_breached_at": _iso(order.confirmation_overdue_at),
        "desk_reminder_at": _iso(order.confirmation_remind_at),
    }


def order_details(session: Session, number: str) -> dict[str, Any] | None:
    """Everything `order show` prints, as plain data."""
    order = find_order(session, number)
    if order is None:
        return None
    parent = session.get(Order, order.parent_id) if order.parent_id else None
    details = order_row(order, parent.number if parent else None)
    details["placed_at"] = _iso(order.placed_at)
    details.update(_deadline(order))
    details["hold_state"] = order.hold_state
    # The root of a family keeps why its capture failed, until someone acts.
    root = find_order(session, order.number.split(BACKORDER_SUFFIX, 1)[0]) or order
    details["capture_failure"] = root.capture_failure
    details["lines"] = [
        {"sku": x.sku, "quantity": x.quantity, "unit_price": x.unit_price, "is_insert": x.is_insert}
        for x in order_lines(session, order.id)
    ]
    payments = session.scalars(
        select(Payment).where(Payment.order_id == order.id).order_by(Payment.at)
    )
    details["payments"] = [
        {
            "amount": p.amount,
            "method": p.method,
            "source": p.source,
            "reference": p.reference,
            "at": _iso(p.at),
        }
        for p in payments
    ]
    details["notifications"] = [
        {
            "kind": n.kind,
            "channel": n.channel,
            "recipient": n.recipient,
            "status": n.status,
            "attempts": n.attempts,
            "last_error": n.last_error,
            "created_at": _iso(n.created_at),
            "sent_at": _iso(n.sent_at),
        }
        for n in notifications.for_order(session, order.id)
    ]
    details["restock_decisions"] = backorders.decisions_for(session, order.id)
    details["timeline"] = [
        {"at": _iso(e.at), "kind": e.kind, "summary": e.summary}
        for e in timeline(session, order.id)
    ]
    return details
