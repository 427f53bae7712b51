"""Order look-ups and the order timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from models.db.commerce import Order, OrderLine
from models.db.machinery import TimelineEvent
from models.domain.orders import LineSpec


def find_order(session: Session, number: str, *, for_update: bool = False) -> Order | None:
    """The order with this number, row-locked when asked."""
    query = select(Order).where(Order.number == number)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def descendants(session: Session, orders: Sequence[Order]) -> list[Order]:
    """Every backorder split off these orders, at any depth, row-locked level by level (a
    backorder's id is always above its parent's, so locks keep ascending)."""
    found: list[Order] = []
    level = [order.id for order in orders]
    for _ in range(64):  # a family is a few levels deep; the bound guards against a cycle
        if not level:
            break
        query = select(Order).where(Order.parent_id.in_(level)).order_by(Order.id)
        children = list(session.scalars(query.with_for_update()))
        found.extend(children)
        level = [child.id for child in children]
    return found


def order_lines(session: Session, order_id: int) -> Sequence[OrderLine]:
    """An order's lines in position order."""
    query = select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position)
    return session.scalars(query).all()


def replace_lines(session: Session, order_id: int, lines: Sequence[LineSpec]) -> None:
    """Swap an order's lines for `lines`."""
    session.execute(delete(OrderLine).where(OrderLine.order_id == order_id))
    session.add_all(
        OrderLine(
            order_id=order_id,
            position=position,
            sku=line.sku,
            quantity=line.quantity,
            unit_price=line.unit_price,
            is_insert=line.is_insert,
        )
        for position, line in enumerate(lines, start=1)
    )


def record(
    session: Session,
    order: Order,
    at: datetime,
    kind: str,
    summary: str,
    *,
    details: dict[str, Any] | None = None,
    envelope_id: str | None = None,
) -> None:
    """Append one event to the order's timeline."""
    session.add(
        TimelineEvent(
            order_id=order.id,
            at=at,
            kind=kind,
            summary=summary,
            details=details or {},
            envelope_id=envelope_id,
        )
    )


def record_many(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """Append many timeline events in one statement; each holds order_id, at, kind, summary and
    optionally details."""
    if events:
        rows = [{"details": {}, "envelope_id": None, **event} for event in events]
        session.execute(insert(TimelineEvent), rows)


def timeline(session: Session, order_id: int) -> Sequence[TimelineEvent]:
    """An order's timeline, oldest first."""
    query = select(TimelineEvent).where(TimelineEvent.order_id == order_id)
    return session.scalars(query.order_by(TimelineEvent.at, TimelineEvent.id)).all()
