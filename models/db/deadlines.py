"""Named statements of the confirmation scan, the desk reminders and `orderflow status`.

Due orders are found through the partial indexes `ix_orders_open_deadline` and
`ix_orders_due_reminder`, so a scan costs the same however many orders the table holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select, text, update
from sqlalchemy.orm import Session

from models.db.commerce import AWAITING_CONFIRMATION_SQL, Manufacturer, Order

# Literal text, not bound parameters: PostgreSQL proves a partial index usable only from
# constants (a generic plan of a prepared statement has none), SQLite only from equal terms.
AWAITING = text(f"({AWAITING_CONFIRMATION_SQL})")
# (manufacturer id, order number, deadline, overdue at): one line of `orderflow status`.
Listed = tuple[str, str, datetime | None, datetime | None]
OPEN_BREACH = text(
    "(confirmation_overdue AND confirmation_status <> 'confirmed' AND NOT archived"
    " AND fulfillment_status <> 'cancelled')"
)


def overdue_query(now: datetime, limit: int) -> Select[int]:
    """The scan's query (its plan is checked in tests and shown by the benchmark)."""
    return (
        select(Order.id)
        .where(Order.confirmation_deadline <= now, AWAITING)
        .order_by(Order.confirmation_deadline)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def select_overdue(session: Session, now: datetime, limit: int) -> list[int]:
    """Ids of up to `limit` orders past their deadline and not yet marked, earliest deadline
    first, row-locked; rows another scanner holds are skipped (PostgreSQL; SQLite serializes)."""
    return list(session.scalars(overdue_query(now, limit)))


def mark_overdue(session: Session, ids: Sequence[int], now: datetime) -> list[int]:
    """Mark these orders overdue, re-checking that each still qualifies; the ids marked.

    The pending desk reminder goes too: after the failure message it would only confuse.
    """
    if not ids:
        return []
    statement = (
        update(Order)
        .where(Order.id.in_(ids), Order.confirmation_deadline <= now, AWAITING)
        .values(
            confirmation_overdue=True,
            confirmation_overdue_at=now,
            confirmation_remind_at=None,
            updated_at=now,
        )
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(statement))


def select_due_reminders(session: Session, now: datetime, limit: int) -> list[int]:
    """Ids of up to `limit` orders whose desk reminder is due, earliest first, row-locked."""
    query = (
        select(Order.id)
        .where(Order.confirmation_remind_at.is_not(None), Order.confirmation_remind_at <= now)
        .order_by(Order.confirmation_remind_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def take_reminders(session: Session, ids: Sequence[int], now: datetime) -> list[int]:
    """Clear these orders' reminder times (each is taken once); the ids this call cleared."""
    if not ids:
        return []
    statement = (
        update(Order)
        .where(Order.id.in_(ids), Order.confirmation_remind_at <= now)
        .values(confirmation_remind_at=None)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(statement))


def orders_with_makers(session: Session, ids: Sequence[int]) -> list[tuple[Order, Manufacturer]]:
    """The orders (fresh from the database) with their manufacturers, in id order."""
    if not ids:
        return []
    query = (
        select(Order, Manufacturer)
        .join(Manufacturer, Manufacturer.id == Order.manufacturer_id)
        .where(Order.id.in_(ids))
        .order_by(Order.id)
        .execution_options(populate_existing=True)
    )
    return [(order, maker) for order, maker in session.execute(query)]


def open_breaches(session: Session, limit: int) -> list[Listed]:
    """Orders marked overdue and still unconfirmed, open and not archived, oldest deadline
    first: (manufacturer id, number, deadline, overdue at)."""
    query = (
        select(
            Order.manufacturer_id,
            Order.number,
            Order.confirmation_deadline,
            Order.confirmation_overdue_at,
        )
        .where(OPEN_BREACH)
        .order_by(Order.confirmation_deadline, Order.id)
        .limit(limit)
    )
    return [(maker, number, deadline, at) for maker, number, deadline, at in session.execute(query)]


def due_soon(session: Session, until: datetime, limit: int) -> list[Listed]:
    """Orders still waiting for confirmation with a deadline before `until` (including those past
    it that the scan has not reached yet), earliest first: (manufacturer id, number, deadline,
    None)."""
    query = (
        select(
            Order.manufacturer_id,
            Order.number,
            Order.confirmation_deadline,
            Order.confirmation_overdue_at,
        )
        .where(Order.confirmation_deadline <= until, AWAITING)
        .order_by(Order.confirmation_deadline)
        .limit(limit)
    )
    return [(maker, number, deadline, at) for maker, number, deadline, at in session.execute(query)]


def breach_counts(session: Session) -> dict[str, int]:
    """Open breaches per manufacturer id."""
    query = select(Order.manufacturer_id, func.count()).where(OPEN_BREACH)
    return {
        maker: int(count) for maker, count in session.execute(query.group_by(Order.manufacturer_id))
    }


def due_soon_counts(session: Session, until: datetime) -> dict[str, int]:
    """Orders due before `until` and still waiting, per manufacturer id."""
    query = select(Order.manufacturer_id, func.count()).where(
        Order.confirmation_deadline <= until, AWAITING
    )
    return {
        maker: int(count) for maker, count in session.execute(query.group_by(Order.manufacturer_id))
    }


def manufacturer_names(session: Session, ids: Sequence[str]) -> dict[str, str]:
    """Display names of these manufacturers."""
    if not ids:
        return {}
    query = select(Manufacturer.id, Manufacturer.name).where(Manufacturer.id.in_(ids))
    return dict(session.execute(query).all())
