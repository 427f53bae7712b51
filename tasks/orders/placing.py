"""`order.placed`: one order at a time, or a whole run of them in a fixed number of statements.

Both paths build the same rows with the same functions; the bulk path only batches the SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models.db.commerce import Customer, Manufacturer, Order, OrderLine
from models.db.machinery import TimelineEvent
from models.db.sql import table_of, upsert_many
from models.db.uow import UnitOfWork
from models.domain.calendar import BusinessCalendar, confirmation_deadline, reminder_time
from models.domain.calendar_settings import CalendarSettingError
from models.domain.errors import PermanentError
from models.domain.ledger import payment_status, totals
from models.domain.orders import LineSpec, initial_hold, order_total
from models.domain.statuses import ConfirmationStatus, FulfillmentStatus, PaymentMethod
from tasks.intake.base import Awaiting
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.orders import OrderLineV1, OrderPlacedV1

log = logging.getLogger("orderflow.ingress")


def calendar_of(manufacturer: Manufacturer) -> BusinessCalendar:
    """The manufacturer's business calendar as the domain sees it; PermanentError
    `manufacturer_invalid`, naming the setting, if a stored one cannot be used."""
    calendar = BusinessCalendar(
        timezone=manufacturer.timezone,
        weekend_days=frozenset(manufacturer.weekend_days),
        holiday_country=manufacturer.holiday_country,
        holiday_subdivision=manufacturer.holiday_subdivision,
        closure_days=frozenset(date.fromisoformat(d) for d in manufacturer.closure_days),
        cutoff_hour=manufacturer.cutoff_hour,
    )
    try:
        # Rows stored before manufacturer.upserted checked these would otherwise fail deep in
        # the deadline arithmetic, or give deadlines at midnight (cut-off hour 0).
        calendar.validate()
    except CalendarSettingError as error:
        detail = f"manufacturer {manufacturer.id} has a bad setting, {error}"
        raise PermanentError("manufacturer_invalid", detail) from error
    return calendar


def _data(message: DecodedMessage) -> OrderPlacedV1:
    return message.data_as(OrderPlacedV1)


def line_specs(lines: Sequence[OrderLineV1]) -> list[LineSpec]:
    """Message lines as the domain sees them."""
    return [LineSpec(x.sku, x.quantity, x.unit_price, x.is_insert) for x in lines]


def reminder_share(uow: UnitOfWork) -> float:
    """Where in the confirmation window the desk is reminded (ORDERFLOW_REMINDER_SHARE, passed
    in by the composition root); the default where no settings are at hand (tools, tests)."""
    return uow.options.reminder_share


def order_row(
    data: OrderPlacedV1, manufacturer: Manufacturer, now: datetime, share: float
) -> dict[str, Any]:
    """Every column of a new order; `share` places the desk reminder within the window."""
    method = PaymentMethod(data.payment_method.value)
    hold = initial_hold(method)
    total = order_total(line_specs(data.lines))
    deadline = confirmation_deadline(
        data.placed_at, calendar_of(manufacturer), manufacturer.sla_business_days
    )
    return {
        "number": data.number,
        "parent_id": None,
        "customer_id": data.customer.id,
        "manufacturer_id": manufacturer.id,
        "currency": data.currency,
        "total": total,
        "payment_method": method.value,
        "stripe_payment_intent_id": data.stripe_payment_intent_id,
        "placed_at": data.placed_at,
        "confirmation_status": ConfirmationStatus.NEW.value,
        "confirmation_deadline": deadline,
        "confirmation_remind_at": reminder_time(data.placed_at, deadline, share),
        "confirmation_overdue": False,
        "confirmed_at": None,
        "fulfillment_status": FulfillmentStatus.UNFULFILLED.value,
        "fulfillment_changed_at": None,
        "payment_status": payment_status(totals(total, [], []), hold).value,
        "hold_state": hold.value,
        "invoiced": 0,
        "paid": 0,
        "outstanding_balance": 0,
        "archived": False,
        "lines_locked": False,
        "download_allowed": False,
        "tracking_numbers": [],
        "carrier": None,
        "capture_before": data.capture_before,
        "updated_at": now,
    }


def line_rows(order_id: int, data: OrderPlacedV1) -> list[dict[str, Any]]:
    """The order's lines in position order."""
    return [
        {
            "order_id": order_id,
            "position": position,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "is_insert": line.is_insert,
        }
        for position, line in enumerate(line_specs(data.lines), start=1)
    ]


def timeline_row(
    order_id: int, row: dict[str, Any], envelope_id: str, now: datetime
) -> dict[str, Any]:
    """The `order.placed` timeline entry."""
    summary = (
        f"placed with total {row['total']} {row['currency']}; "
        f"confirmation due {row['confirmation_deadline'].isoformat()}"
    )
    return {
        "order_id": order_id,
        "at": now,
        "kind": "order.placed",
        "summary": summary,
        "details": {},
        "envelope_id": envelope_id,
    }


def _upsert_customers(session: Session, data: Sequence[OrderPlacedV1]) -> None:
    # The last message's name and email win, as they would one by one.
    latest = {d.customer.id: d.customer for d in data}
    # Sorted by key: the global lock order (docs/decisions.md), whoever else upserts them.
    rows = [{"id": c.id, "email": c.email, "name": c.name} for _, c in sorted(latest.items())]
    upsert_many(session, Customer, rows, ["id"], ["email", "name"])


def _manufacturers(session: Session, ids: set[str]) -> dict[str, Manufacturer]:
    found = session.scalars(select(Manufacturer).where(Manufacturer.id.in_(ids))).all()
    return {m.id: m for m in found}


def _insert(
    session: Session, rows: list[tuple[DecodedMessage, dict[str, Any]]], now: datetime
) -> None:
    # Core statements on the tables: the ORM's bulk path costs a third more per row here.
    orders = table_of(Order)
    numbers = session.execute(
        insert(orders).returning(orders.c.id, orders.c.number), [row for _, row in rows]
    ).all()
    ids = {number: order_id for order_id, number in numbers}
    lines, events = [], []
    for message, row in rows:
        order_id = ids[row["number"]]
        lines.extend(line_rows(order_id, _data(message)))
        events.append(timeline_row(order_id, row, str(message.envelope.id), now))
    session.execute(insert(table_of(OrderLine)), lines)
    session.execute(insert(table_of(TimelineEvent)), events)


def place_order(uow: UnitOfWork, message: DecodedMessage) -> str:
    """Store one order and its deadline; refuse a number already taken."""
    data = _data(message)
    session, now = uow.session, uow.clock()
    if session.scalar(select(Order.id).where(Order.number == data.number)) is not None:
        raise PermanentError("order_exists", f"order {data.number} was placed before")
    _check_intent_free(session, data)
    manufacturer = session.get(Manufacturer, data.manufacturer_id)
    if manufacturer is None:
        # Another consumer may be applying its manufacturer.upserted right now: wait for it.
        raise Awaiting("manufacturer", data.manufacturer_id)
    _upsert_customers(session, [data])
    _insert(session, [(message, order_row(data, manufacturer, now, reminder_share(uow)))], now)
    return f"order:{data.number}"


def _intent_holders(session: Session, intents: Sequence[str | None]) -> list[str]:
    """The orders that already hold any of these PaymentIntents."""
    wanted = [i for i in intents if i is not None]
    if not wanted:
        return []
    query = select(Order.number).where(Order.stripe_payment_intent_id.in_(wanted))
    return list(session.scalars(query.order_by(Order.id)))


def _check_intent_free(session: Session, data: OrderPlacedV1) -> None:
    """Refuse a PaymentIntent another order family holds: one hold is captured once (I2)."""
    holders = _intent_holders(session, [data.stripe_payment_intent_id])
    if holders:
        raise PermanentError(
            "payment_intent_in_use", f"its PaymentIntent already belongs to order {holders[0]}"
        )


def place_orders(uow: UnitOfWork, messages: Sequence[DecodedMessage]) -> list[str] | None:
    """Store many new orders at once, returning their keys; None when any needs the one-by-one
    path (a number or PaymentIntent taken or repeated, an unknown manufacturer) to be refused
    or parked alone."""
    session, now = uow.session, uow.clock()
    data = [_data(m) for m in messages]
    numbers = [d.number for d in data]
    if len(set(numbers)) != len(numbers):
        return None
    if session.scalar(select(Order.id).where(Order.number.in_(numbers)).limit(1)) is not None:
        return None
    intents = [d.stripe_payment_intent_id for d in data if d.stripe_payment_intent_id]
    if len(set(intents)) != len(intents) or _intent_holders(session, intents):
        return None
    makers = _manufacturers(session, {d.manufacturer_id for d in data})
    if any(d.manufacturer_id not in makers for d in data):
        return None
    _upsert_customers(session, data)
    share = reminder_share(uow)
    rows = [
        (m, order_row(d, makers[d.manufacturer_id], now, share))
        for m, d in zip(messages, data, strict=True)
    ]
    _insert(session, rows, now)
    return [f"order:{number}" for number in numbers]


def warm_calendars(uow: UnitOfWork, around: date) -> int:
    """Load the holiday calendars of every usable manufacturer for the years around `around`,
    and count them.

    Building a country's calendar the first time costs about half a second; a worker pays it
    at start-up instead of inside the first batch of orders.
    """
    warmed = 0
    for maker in uow.session.scalars(select(Manufacturer)).all():
        try:
            calendar = calendar_of(maker)
        except PermanentError as error:
            # Its orders are refused with this reason; the worker must still start.
            log.warning("calendar not loaded: %s", error.detail)
            continue
        for year in (around.year - 1, around.year, around.year + 1):
            calendar.is_business_day(date(year, 6, 1))
        warmed += 1
    return warmed
