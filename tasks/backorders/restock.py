"""`inventory.received`: add stock, then release waiting backorders oldest first.

The whole release is one transaction under the allocation lock: stock is reserved for every
released backorder, each moves to processing, and its `fulfillment.submitted` event and
customer email are staged; every backorder considered gets a recorded decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models.db import stock
from models.db.commerce import Order, Restock, RestockDecision
from models.db.machinery import TimelineEvent
from models.db.uow import UnitOfWork
from models.domain.backorders import ReleasePlan, ReleasePolicy, plan_release
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.inventory import InventoryReceivedV1
from tasks.notifications import staging as notify
from tasks.outbox import egress

RELEASED_TEMPLATE = "backorder_released"
SUBMITTED_EVENT = "fulfillment.submitted"
_CHUNK = 1000


def policy_of(uow: UnitOfWork) -> ReleasePolicy:
    """The configured release policy (skip-blocked unless configured strict)."""
    return uow.options.backorder_policy


def plan(session: Session, sku: str, received: int, policy: ReleasePolicy) -> ReleasePlan:
    """What receiving `received` more of `sku` would release (read only; the dry run)."""
    waiting = stock.waiting_for(session, sku)
    free = stock.available(session, {sku} | {s for w in waiting for s in w.needs})
    free[sku] += received
    return plan_release(waiting, free, policy)


def receive_inventory(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Add the received quantity and release whom it (with other stock) now fills."""
    data = message.data_as(InventoryReceivedV1)
    session, now = uow.session, uow.clock()
    policy = policy_of(uow)
    stock.lock_allocation(session)
    stock.receive(session, data.sku, data.quantity)
    decided = plan(session, data.sku, 0, policy)
    released = [w.order_id for w in decided.released]
    stock.reserve_many(session, {w.order_id: w.needs for w in decided.released}, now)
    if stock.mark_released(session, released, now) != len(released):
        raise stock.OverReservationError("a backorder planned for release was no longer waiting")
    restock = Restock(
        sku=data.sku,
        quantity=data.quantity,
        policy=policy.value,
        considered=len(decided.released) + len(decided.skipped),
        released=len(decided.released),
        skipped=len(decided.skipped),
        available_after=decided.available_after[data.sku],
        envelope_id=str(message.envelope.id),
        at=now,
    )
    session.add(restock)
    session.flush()
    _record_decisions(session, restock, decided, now)
    _submit(uow, decided, restock, str(message.envelope.id))


def _record_decisions(
    session: Session, restock: Restock, decided: ReleasePlan, now: datetime
) -> None:
    rows: list[dict[str, Any]] = [
        {"restock_id": restock.id, "order_id": w.order_id, "outcome": outcome, "reason": why}
        for w, outcome, why in decided.decisions()
    ]
    timeline = [
        {
            "order_id": w.order_id,
            "at": now,
            "kind": "backorder.released",
            "summary": f"released by restock #{restock.id} of {restock.sku}: fulfillment "
            "backordered -> processing",
            "details": {"restock_id": restock.id, "lines": dict(w.needs)},
            "envelope_id": restock.envelope_id,
        }
        for w in decided.released
    ]
    for start in range(0, max(len(rows), len(timeline)), _CHUNK):
        if rows[start : start + _CHUNK]:
            session.execute(insert(RestockDecision), rows[start : start + _CHUNK])
        if timeline[start : start + _CHUNK]:
            session.execute(insert(TimelineEvent), timeline[start : start + _CHUNK])


def _submit(uow: UnitOfWork, decided: ReleasePlan, restock: Restock, cause: str) -> None:
    """Stage each released backorder's `fulfillment.submitted` event and customer email."""
    needs = {w.order_id: w.needs for w in decided.released}
    ids = list(needs)
    for start in range(0, len(ids), _CHUNK):
        orders = uow.session.scalars(select(Order).where(Order.id.in_(ids[start : start + _CHUNK])))
        events, emails = [], []
        for order in orders:
            lines = [{"sku": sku, "quantity": qty} for sku, qty in sorted(needs[order.id].items())]
            events.append(
                (
                    f"order:{order.id}:{SUBMITTED_EVENT}:{restock.id}",
                    {
                        "number": order.number,
                        "parent_number": _parent_number(uow.session, order),
                        "lines": lines,
                        "restock_id": restock.id,
                    },
                )
            )
            emails.append((order, {"released_lines": lines}))
        egress.emit_many(uow, SUBMITTED_EVENT, events)
        notify.stage_many(uow, emails, RELEASED_TEMPLATE, cause)


def _parent_number(session: Session, order: Order) -> str | None:
    if order.parent_id is None:
        return None
    parent = session.get(Order, order.parent_id)
    return parent.number if parent else None
