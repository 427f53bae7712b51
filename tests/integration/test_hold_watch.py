"""The hold watch: a warning before a card hold lapses, lapsed holds marked (never captured
afterwards), and unknown expiry times learned from Stripe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from models.db.commerce import Order
from tasks.holds import HoldWatch, watch
from tests import factories as f
from tests.integration.test_capture import CAPTURE, DESK, Desk, desk

pytestmark = pytest.mark.integration
__all__ = ["desk"]  # the fixture, shared with the capture tests
WARN = timedelta(hours=24)


def _set_capture_before(d: Desk, number: str, at: datetime) -> None:
    with d.db.sessions() as session, session.begin():
        session.execute(update(Order).where(Order.number == number).values(capture_before=at))


def _watch(d: Desk) -> HoldWatch:
    with d.uow() as uow:
        done = watch(uow, d.now, WARN, limit=100)
        uow.commit()
    return done


def test_the_desk_is_warned_once_before_a_hold_lapses(desk: Desk) -> None:
    desk.card_order("H1")
    _set_capture_before(desk, "H1", desk.now + timedelta(hours=10))
    assert _watch(desk) == HoldWatch(warned=1, expired=0, asked=0)
    assert _watch(desk) == HoldWatch(warned=0, expired=0, asked=0)
    assert desk.templates() == [("desk_hold_expiring", DESK)]


def test_a_lapsed_hold_is_marked_and_a_later_shipment_is_not_captured(desk: Desk) -> None:
    pi_id = desk.card_order("H2")
    _set_capture_before(desk, "H2", desk.now - timedelta(minutes=1))
    assert _watch(desk) == HoldWatch(warned=0, expired=1, asked=0)
    order = desk.order("H2")
    assert (order.hold_state, order.payment_status) == ("expired", "voided")
    desk.feed(f.envelope("order.shipped", number="H2"))
    desk.run_payments()
    assert desk.fake.requests.get(CAPTURE) is None
    assert desk.fake.captures_for(pi_id) == []
    assert desk.order("H2").fulfillment_status == "shipped"
    assert desk.templates() == [
        ("desk_hold_expired", DESK),
        ("fulfillment_shipped", "ada@example.com"),
    ]


def test_an_unknown_expiry_is_learned_from_stripe(desk: Desk) -> None:
    lapses = int(desk.fake.clock.now()) + 5 * 86_400
    desk.card_order("H3", capture_before=lapses)
    assert _watch(desk) == HoldWatch(warned=0, expired=0, asked=1)
    assert _watch(desk) == HoldWatch(warned=0, expired=0, asked=0)
    desk.run_payments()
    assert desk.order("H3").capture_before == datetime.fromtimestamp(lapses, tz=UTC)
    assert desk.fake.effect_counts() == {"create": 1}
