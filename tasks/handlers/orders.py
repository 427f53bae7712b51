"""Order messages: accepted, confirmed, lines changed, archived (placing is in placing.py)."""

from __future__ import annotations

from models.db import backlog
from models.db.orders import record, replace_lines
from models.db.uow import UnitOfWork
from models.domain.backlog import check_lines_may_follow
from models.domain.confirmation import advance
from models.domain.notifications import ORDER_CONFIRMED
from models.domain.orders import (
    check_lines_may_change,
    order_total,
)
from models.domain.statuses import ConfirmationStatus, FulfillmentStatus
from tasks import notify
from tasks.handlers.base import require_order
from tasks.handlers.placing import line_specs
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderArchivedV1
from tasks.messages.v1.orders import (
    OrderAcceptedV1,
    OrderConfirmedV1,
    OrderLinesChangedV1,
)


def _advance(uow: UnitOfWork, message: DecodedMessage, reported: ConfirmationStatus) -> None:
    data = message.data
    assert isinstance(data, OrderAcceptedV1 | OrderConfirmedV1)
    order = require_order(uow, data.number)
    before = ConfirmationStatus(order.confirmation_status)
    after = advance(before, reported)
    now = uow.clock()
    order.confirmation_status = after.value
    if after is ConfirmationStatus.CONFIRMED and order.confirmed_at is None:
        order.confirmed_at = data.at
        # Nothing left to remind the desk of; a breach already marked stays on record.
        order.confirmation_remind_at = None
        notify.stage(uow, order, ORDER_CONFIRMED, str(message.envelope.id))
    # A confirmed order's lines become its regular backlog (once; SPEC 1.1).
    backlog.ensure_regular(uow.session, order, now)
    order.updated_at = now
    summary = f"confirmation {before.value} -> {after.value}"
    if after is before:
        summary = f"{reported.value} reported; stays {before.value}"
    record(
        uow.session,
        order,
        now,
        message.envelope.type,
        summary,
        envelope_id=str(message.envelope.id),
    )


def accept_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Confirmation axis -> accepted (never backwards)."""
    _advance(uow, message, ConfirmationStatus.ACCEPTED)


def confirm_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Confirmation axis -> confirmed; a breach already recorded stays on record."""
    _advance(uow, message, ConfirmationStatus.CONFIRMED)


def change_lines(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Replace the lines unless they are locked or the order is over."""
    data = message.data
    assert isinstance(data, OrderLinesChangedV1)
    order = require_order(uow, data.number)
    check_lines_may_change(
        lines_locked=order.lines_locked,
        fulfillment=FulfillmentStatus(order.fulfillment_status),
        archived=order.archived,
    )
    check_lines_may_follow(has_delivery_note=backlog.has_delivery_note(uow.session, order.id))
    lines = line_specs(data.lines)
    replace_lines(uow.session, order.id, lines)
    before, order.total = order.total, order_total(lines)
    order.updated_at = uow.clock()
    backlog.follow_lines(uow.session, order, order.updated_at)
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
    data = message.data
    assert isinstance(data, OrderArchivedV1)
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
