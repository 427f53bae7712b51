"""Order messages: accepted, confirmed, lines changed, archived (placing is in placing.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.db import backlog
from models.db.commerce import Order
from models.db.ledger import refresh
from models.db.orders import descendants, record, record_many, replace_lines
from models.db.uow import UnitOfWork
from models.domain.backlog import check_lines_may_follow
from models.domain.confirmation import advance
from models.domain.notifications import ORDER_CONFIRMED
from models.domain.orders import (
    check_billable,
    check_lines_may_change,
    order_total,
)
from models.domain.statuses import ConfirmationStatus, FulfillmentStatus
from tasks.intake.base import lock_run, require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderArchivedV1
from tasks.messages.v1.orders import (
    OrderAcceptedV1,
    OrderConfirmedV1,
    OrderLinesChangedV1,
)
from tasks.notifications import staging as notify
from tasks.orders.placing import line_specs


def _advance(uow: UnitOfWork, message: DecodedMessage, reported: ConfirmationStatus) -> None:
    order = require_order(uow, _progress_data(message).number)
    newly, event = _move(uow, order, message, reported)
    record_many(uow.session, [event])
    if newly:
        notify.stage(uow, order, ORDER_CONFIRMED, str(message.envelope.id))
    # A confirmed order's lines become its regular backlog (once; SPEC 1.1).
    backlog.ensure_regular(uow.session, order, uow.clock())
    _follow_family(uow, [order])


def _advance_many(
    uow: UnitOfWork, messages: Sequence[DecodedMessage], reported: ConfirmationStatus
) -> list[str] | None:
    """`_advance` for a run of messages in a fixed number of statements; None when one of them
    needs the one-by-one path (its order is not here yet, or it repeats a number)."""
    numbers = [_progress_data(m).number for m in messages]
    found = lock_run(uow, numbers)
    if found is None:
        return None
    confirmed, events = [], []
    for message, number in zip(messages, numbers, strict=True):
        newly, timeline_event = _move(uow, found[number], message, reported)
        events.append(timeline_event)
        if newly:
            confirmed.append((found[number], str(message.envelope.id)))
    record_many(uow.session, events)
    notify.stage_each(uow, confirmed, ORDER_CONFIRMED)
    backlog.ensure_regular_many(uow.session, list(found.values()), uow.clock())
    _follow_family(uow, list(found.values()))
    return []


def _follow_family(uow: UnitOfWork, orders: Sequence[Order]) -> None:
    """Backorders are confirmed with the order they were split off: the manufacturer confirms
    the original order only, and a card backorder must become eligible for paid backlog."""
    by_id = {order.id: order for order in orders}
    followers = []
    for child in descendants(uow.session, orders):
        by_id[child.id] = child
        parent = by_id.get(child.parent_id or 0)
        if parent is None:
            continue
        before = ConfirmationStatus(child.confirmation_status)
        after = advance(before, ConfirmationStatus(parent.confirmation_status))
        if after is before:
            continue
        child.confirmation_status = after.value
        if after is ConfirmationStatus.CONFIRMED and child.confirmed_at is None:
            child.confirmed_at = parent.confirmed_at
        child.updated_at = uow.clock()
        followers.append(child)
    backlog.ensure_regular_many(uow.session, followers, uow.clock())


def _progress_data(message: DecodedMessage) -> OrderAcceptedV1 | OrderConfirmedV1:
    if message.envelope.type == OrderAcceptedV1.TYPE:
        return message.data_as(OrderAcceptedV1)
    return message.data_as(OrderConfirmedV1)


def _move(
    uow: UnitOfWork, order: Order, message: DecodedMessage, reported: ConfirmationStatus
) -> tuple[bool, dict[str, Any]]:
    """Advance one locked order: whether it is newly confirmed (its customer is then told), and
    its timeline entry."""
    data = _progress_data(message)
    before = ConfirmationStatus(order.confirmation_status)
    after = advance(before, reported)
    now = uow.clock()
    order.confirmation_status = after.value
    newly = after is ConfirmationStatus.CONFIRMED and order.confirmed_at is None
    if newly:
        order.confirmed_at = data.at
        # Nothing left to remind the desk of; a breach already marked stays on record.
        order.confirmation_remind_at = None
    order.updated_at = now
    summary = f"confirmation {before.value} -> {after.value}"
    if after is before:
        summary = f"{reported.value} reported; stays {before.value}"
    return newly, {
        "order_id": order.id,
        "at": now,
        "kind": message.envelope.type,
        "summary": summary,
        "envelope_id": str(message.envelope.id),
    }


def accept_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Confirmation axis -> accepted (never backwards)."""
    _advance(uow, message, ConfirmationStatus.ACCEPTED)


def confirm_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Confirmation axis -> confirmed; a breach already recorded stays on record."""
    _advance(uow, message, ConfirmationStatus.CONFIRMED)


def accept_orders(uow: UnitOfWork, messages: Sequence[DecodedMessage]) -> list[str] | None:
    """`accept_order` for a run of messages (see `_advance_many`)."""
    return _advance_many(uow, messages, ConfirmationStatus.ACCEPTED)


def confirm_orders(uow: UnitOfWork, messages: Sequence[DecodedMessage]) -> list[str] | None:
    """`confirm_order` for a run of messages (see `_advance_many`)."""
    return _advance_many(uow, messages, ConfirmationStatus.CONFIRMED)


def change_lines(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Replace the lines unless they are locked or the order is over."""
    data = message.data_as(OrderLinesChangedV1)
    order = require_order(uow, data.number)
    check_lines_may_change(
        lines_locked=order.lines_locked,
        fulfillment=FulfillmentStatus(order.fulfillment_status),
        archived=order.archived,
    )
    check_lines_may_follow(has_delivery_note=backlog.has_delivery_note(uow.session, order.id))
    lines = line_specs(data.lines)
    check_billable(total=order_total(lines), invoiced=order.invoiced)
    replace_lines(uow.session, order.id, lines)
    before, order.total = order.total, order_total(lines)
    order.updated_at = uow.clock()
    backlog.follow_lines(uow.session, order, order.updated_at)
    # Before invoicing the amount due is the total: the payment status follows it (I8).
    refresh(uow.session, order)
    record(
        uow.session,
        order,
        order.updated_at,
        "order.lines_changed",
        f"{len(lines)} lines; total {before} -> {order.total}",
        envelope_id=str(message.envelope.id),
    )


def archive_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Archive: no further automatic action on this order."""
    data = message.data_as(OrderArchivedV1)
    order = require_order(uow, data.number)
    order.updated_at = uow.clock()
    if not order.archived:
        order.archived = True
        record(
            uow.session,
            order,
            order.updated_at,
            "order.archived",
            "archived",
            envelope_id=str(message.envelope.id),
        )
