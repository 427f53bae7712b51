"""`order.split_requested`: keep what is in stock, move the rest to `<number>-backorder`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db import backlog, stock
from models.db.commerce import Order
from models.db.ledger import refresh
from models.db.orders import order_lines, record, replace_lines
from models.db.uow import UnitOfWork
from models.domain.backorders import BACKORDER_SUFFIX, backorder_number, plan_split
from models.domain.fulfillment import check_transition
from models.domain.orders import LineSpec, check_billable, check_lines_may_change, order_total
from models.domain.statuses import FulfillmentStatus
from tasks.intake.base import require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderSplitRequestedV1
from tasks.notifications import staging as notify

SPLIT_TEMPLATE = "backorder_split"


def split_order(uow: UnitOfWork, message: DecodedMessage) -> str:
    """Split by stock now on hand; refused (nothing changed) when the rules say no."""
    data = message.data_as(OrderSplitRequestedV1)
    session, now = uow.session, uow.clock()
    order = require_order(uow, data.number)
    current = FulfillmentStatus(order.fulfillment_status)
    check_lines_may_change(
        lines_locked=order.lines_locked, fulfillment=current, archived=order.archived
    )
    check_transition(current, FulfillmentStatus.PROCESSING)
    stock.lock_allocation(session)
    lines = [
        LineSpec(x.sku, x.quantity, x.unit_price, x.is_insert)
        for x in order_lines(session, order.id)
    ]
    free = stock.available(session, {line.sku for line in lines})
    held = stock.held_by(session, order.id)  # an order split again may use its own stock
    plan = plan_split(lines, {sku: free[sku] + held.get(sku, 0) for sku in free})
    check_billable(total=order_total(plan.keep), invoiced=order.invoiced)
    stock.release_reservations(session, order.id)
    stock.reserve(session, order.id, plan.reserve(), now)
    backorder = _create_backorder(session, order, list(plan.move), now)
    replace_lines(session, order.id, plan.keep)
    order.total = order_total(plan.keep)
    order.fulfillment_status = FulfillmentStatus.PROCESSING.value
    order.fulfillment_changed_at = message.envelope.occurred_at
    order.updated_at = now
    backlog.follow_split(session, order, backorder, now)
    refresh(session, order)
    refresh(session, backorder)
    moved = ", ".join(f"{line.quantity} x {line.sku}" for line in plan.move)
    record(
        session,
        order,
        now,
        "order.split",
        f"split: {moved} moved to {backorder.number}",
        details={"backorder": backorder.number, "note": data.note},
        envelope_id=str(message.envelope.id),
    )
    record(
        session,
        backorder,
        now,
        "order.split",
        f"backorder of {order.number}: {moved}",
        envelope_id=str(message.envelope.id),
    )
    if data.notify_customer:
        notify.stage(
            uow,
            order,
            SPLIT_TEMPLATE,
            str(message.envelope.id),
            {
                "note": data.note,
                "backorder_number": backorder.number,
                "kept_lines": _listed(plan.keep),
                "moved_lines": _listed(plan.move),
            },
        )
    return f"order:{backorder.number}"


def _listed(lines: tuple[LineSpec, ...]) -> list[dict[str, object]]:
    return [{"sku": line.sku, "quantity": line.quantity} for line in lines]


def _create_backorder(
    session: Session, order: Order, lines: list[LineSpec], now: datetime
) -> Order:
    """The new order: same customer, manufacturer and payment; its confirmation is the parent's.

    It has no deadline of its own: the manufacturer confirms the original order, so the SLA
    scan chases only that one.
    """
    root = order.number.split(BACKORDER_SUFFIX, 1)[0]
    taken = session.scalars(
        select(Order.number).where(Order.number.like(f"{root}{BACKORDER_SUFFIX}%"))
    ).all()
    backorder = Order(
        number=backorder_number(order.number, list(taken)),
        parent_id=order.id,
        customer_id=order.customer_id,
        manufacturer_id=order.manufacturer_id,
        currency=order.currency,
        total=order_total(lines),
        payment_method=order.payment_method,
        stripe_payment_intent_id=order.stripe_payment_intent_id,
        capture_before=order.capture_before,  # one hold for the family, one expiry
        placed_at=order.placed_at,
        confirmation_status=order.confirmation_status,
        confirmed_at=order.confirmed_at,
        fulfillment_status=FulfillmentStatus.BACKORDERED.value,
        payment_status=order.payment_status,
        hold_state=order.hold_state,
        updated_at=now,
    )
    session.add(backorder)
    session.flush()
    replace_lines(session, backorder.id, lines)
    return backorder
