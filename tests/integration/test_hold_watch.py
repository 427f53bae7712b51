"""The hold watch: a warning before a card hold lapses, lapsed holds marked (never captured
afterwards), and unknown expiry times learned from Stripe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from models.db.commerce import Order
from tasks.payments.holds import HoldWatch, watch
from tests import factories as f
from tests.integration.stripe_desk import CAPTURE, DESK, Desk

pytestmark = pytest.mark.integration
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


def _event(event_id: str, type_: str, obj_id: str, obj: str = "payment_intent") -> dict[str, Any]:
    data = {"object": {"id": obj_id, "object": obj}}
    return f.envelope("stripe.event", id=event_id, type=type_, created=1772442900,
                      livemode=False, data=data)  # fmt: skip


def test_webhook_events_are_checked_against_stripe_before_anything_is_recorded(
    desk: Desk,
) -> None:
    # Given a card order whose hold is cancelled in Stripe's dashboard
    pi_id = desk.card_order("W1")
    desk.fake.ledger.cancel_intent(pi_id, {}, None)
    # When the event arrives twice (the same event id, two envelopes) and a forged one claims
    # the intent succeeded
    canceled = _event("evt_cancel_1", "payment_intent.canceled", pi_id)
    again = _event("evt_cancel_1", "payment_intent.canceled", pi_id)
    forged = _event("evt_forged_1", "payment_intent.succeeded", pi_id)
    assert [o.result for o in desk.feed(canceled, again, forged)] == ["applied"] * 3
    desk.run_payments()
    # Then the real state (canceled) is recorded once; nothing was captured
    order = desk.order("W1")
    assert (order.hold_state, order.payment_status, order.paid) == ("released", "voided", 0)
    assert desk.fake.requests.get(("GET", "/v1/payment_intents/{id}")) == 2
    assert desk.fake.effect_counts() == {"create": 1, "cancel": 1}


def test_a_refund_made_at_stripe_is_recorded_once(desk: Desk) -> None:
    pi_id = desk.card_order("W2")
    desk.feed(f.envelope("order.shipped", number="W2"))
    desk.run_payments()
    charge = desk.fake.intent(pi_id)["latest_charge"]["id"]
    desk.fake.ledger.create_refund({"payment_intent": pi_id, "amount": 800}, None)
    for event_id in ("evt_refund_1", "evt_refund_2"):
        desk.feed(_event(event_id, "charge.refunded", charge, obj="charge"))
        desk.run_payments()
    order = desk.order("W2")
    assert (order.paid, order.payment_status) == (25_800 - 800, "partially_refunded")
