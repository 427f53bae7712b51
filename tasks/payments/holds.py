"""The hold watch: warn the desk before a card hold lapses, mark lapsed holds, and learn when
each hold lapses (a job reads it from Stripe) for card orders that do not know yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, select

from models.db.commerce import Order
from models.db.uow import UnitOfWork
from models.domain.ledger import HoldState
from models.domain.notifications import DESK_HOLD_EXPIRING
from tasks.payments.requesting import RECONCILE_JOB, expire_hold, family, tell_desk

HELD = HoldState.HELD.value


@dataclass(frozen=True)
class HoldWatch:
    """What one pass did."""

    warned: int
    expired: int
    asked: int


def _held(*criteria: ColumnElement[bool]) -> Select[Order]:
    return select(Order).where(and_(Order.hold_state == HELD, *criteria)).order_by(Order.id)


def watch(uow: UnitOfWork, now: datetime, warn: timedelta, limit: int) -> HoldWatch:
    """One bounded pass; every effect is unique per order, so passes may overlap safely."""
    session = uow.session
    lapsed = session.scalars(
        _held(Order.capture_before <= now).limit(limit).with_for_update(skip_locked=True)
    ).all()
    for order in lapsed:
        if HoldState(order.hold_state) is HoldState.HELD:  # a family member may have done it
            expire_hold(uow, family(uow, order), "the card hold lapsed before capture")
    soon = session.scalars(
        _held(Order.capture_before > now, Order.capture_before <= now + warn).limit(limit)
    ).all()
    warned = sum(tell_desk(uow, order, DESK_HOLD_EXPIRING, "hold-warning", {}) for order in soon)
    unknown = session.scalars(
        _held(Order.capture_before.is_(None), Order.stripe_payment_intent_id.is_not(None)).limit(
            limit
        )
    ).all()
    asked = sum(
        uow.stage(
            RECONCILE_JOB,
            f"order:{order.id}:learn-hold",
            {"intent_id": order.stripe_payment_intent_id},
        )
        for order in unknown
    )
    return HoldWatch(warned=warned, expired=len(lapsed), asked=asked)
