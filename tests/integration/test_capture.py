"""Capture on shipment, cancel and refund: messages through the ingress, payment jobs run in
process against the local Stripe fake over HTTP, effects counted at the fake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.db.commerce import Payment
from models.db.machinery import ExternalOperation, OutboxJob
from tasks.messages.signing import sign
from tests import factories as f
from tests.fakes.stripe_faults import FaultKind
from tests.integration.stripe_desk import CAPTURE, DESK, SPLIT_LINES, TOTAL, Desk, shipped

pytestmark = pytest.mark.integration


def test_a_shipment_captures_the_database_amount_once(desk: Desk) -> None:
    # Given an authorized card order
    pi_id = desk.card_order("C1")
    # When it is shipped, the same envelope delivered three times, carrying a forged amount
    ship = shipped("C1", amount=1, tracking_numbers=["TRK-1"])
    outcomes = desk.feed(ship, ship, ship)
    assert [o.result for o in outcomes] == ["applied", "duplicate", "duplicate"]
    assert desk.run_payments() == []
    # Then one capture of the database amount, recorded as a stripe payment
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]
    order = desk.order("C1")
    assert (order.fulfillment_status, order.payment_status, order.hold_state, order.paid) == (
        "shipped", "paid", "captured", TOTAL,
    )  # fmt: skip
    assert desk.templates() == [("fulfillment_shipped", "ada@example.com"),
                                ("payment_paid", "ada@example.com")]  # fmt: skip
    assert desk.count(OutboxJob, OutboxJob.job == "egress.publish") == 1
    # A second, different shipment message captures nothing more
    desk.feed(shipped("C1", tracking_numbers=["TRK-2"]))
    desk.run_payments()
    assert desk.fake.effect_counts() == {"create": 1, "capture": 1}


def test_forged_or_unsigned_shipments_reach_stripe_never(desk: Desk) -> None:
    desk.card_order("C2")
    forged = sign(shipped("C2", signed=False), f.KEY_ID, b"not-our-secret")
    outcomes = desk.feed(forged, shipped("C2", signed=False))
    assert [(o.result, o.reason) for o in outcomes] == [
        ("quarantined", "signature_invalid"), ("quarantined", "signature_missing"),
    ]  # fmt: skip
    desk.run_payments()
    assert desk.fake.requests == {}
    assert desk.order("C2").fulfillment_status == "unfulfilled"


@pytest.mark.parametrize("fault", [FaultKind.SERVER_ERROR_AFTER, FaultKind.TIMEOUT_AFTER,
                                   FaultKind.RESET_AFTER, FaultKind.RESET_BEFORE])  # fmt: skip
def test_an_unclear_capture_is_resolved_from_the_real_state(desk: Desk, fault: FaultKind) -> None:
    # Given a capture whose first call ends unclearly
    pi_id = desk.card_order("C3", capture_before=int(desk.fake.clock.now()) + 86_400 * 6)
    desk.fake.faults.inject_next(r"/capture$", fault)
    desk.feed(shipped("C3"))
    # When the job is retried
    errors = desk.run_payments()
    # Then it read the intent and captured (or recorded) exactly once
    assert errors[:1] == ["stripe_unreachable" if "reset" in fault or "timeout" in fault
                          else "stripe_server_error"]  # fmt: skip
    assert len(desk.fake.captures_for(pi_id)) == 1
    assert desk.order("C3").payment_status == "paid"
    with desk.db.sessions() as session:
        op = session.scalars(select(ExternalOperation)).one()
        assert (op.status, op.attempts) == ("done", 2)


def test_a_decline_is_recorded_and_never_retried(desk: Desk) -> None:
    pi_id = desk.card_order("C4", decline=True)
    desk.feed(shipped("C4"))
    assert desk.run_payments() == []
    assert desk.fake.captures_for(pi_id) == []
    assert desk.fake.requests.get(CAPTURE) == 1
    order = desk.order("C4")
    assert (order.payment_status, order.paid) == ("authorized", 0)
    assert desk.templates()[1:] == [
        ("desk_capture_failed", DESK),
        ("payment_failed", "ada@example.com"),
    ]
    desk.run_payments()
    assert desk.fake.requests.get(CAPTURE) == 1


def test_a_lapsed_hold_is_never_captured(desk: Desk) -> None:
    lapsed = int(desk.fake.clock.now()) - 3600
    pi_id = desk.card_order("C5", capture_before=lapsed)
    desk.feed(shipped("C5"))
    desk.run_payments()
    assert desk.fake.requests.get(CAPTURE) is None
    assert desk.fake.captures_for(pi_id) == []
    order = desk.order("C5")
    assert (order.fulfillment_status, order.hold_state, order.payment_status) == (
        "shipped", "expired", "voided",
    )  # fmt: skip
    assert ("desk_hold_expired", DESK) in desk.templates()


def _placed_with_hold(desk: Desk, number: str, capture_before: datetime, **fields: Any) -> str:
    """A card order whose placement carries the hold's expiry, as the storefront saw it."""
    pi_id = desk.fake.create_authorized_intent(TOTAL, "eur", int(capture_before.timestamp()))
    placed = f.order(number, stripe_payment_intent_id=pi_id, placed_at="2026-03-02T09:00:00Z",
                     capture_before=capture_before.isoformat(), **fields)  # fmt: skip
    assert [o.result for o in desk.feed(f.manufacturer(), placed)] == ["applied", "applied"]
    return pi_id


def test_a_hold_known_from_the_placement_is_captured_without_a_read(desk: Desk) -> None:
    # Given a placement that says when its hold lapses (six days from now)
    expiry = (desk.now + timedelta(days=6)).replace(microsecond=0)
    pi_id = _placed_with_hold(desk, "C6", expiry)
    assert desk.order("C6").capture_before == expiry
    # When it ships
    desk.feed(shipped("C6"))
    assert desk.run_payments() == []
    # Then Stripe is asked once, to capture, and never to read the intent first
    assert desk.fake.requests_for(pi_id) == {CAPTURE: 1}
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]
    assert desk.order("C6").payment_status == "paid"


def test_a_placement_whose_hold_has_lapsed_by_shipment_is_never_captured(desk: Desk) -> None:
    # Given a placement whose hold lapsed a week after it was placed, long before now
    pi_id = _placed_with_hold(desk, "C7", datetime(2026, 3, 9, 9, 0, tzinfo=UTC))
    # When it ships
    desk.feed(shipped("C7"))
    assert desk.run_payments() == []
    # Then Stripe hears nothing about it; the order needs a new payment and the desk is told
    assert desk.fake.requests_for(pi_id) == {}
    assert desk.fake.effect_counts() == {"create": 1}
    order = desk.order("C7")
    assert (order.fulfillment_status, order.hold_state, order.payment_status, order.paid) == (
        "shipped", "expired", "voided", 0,
    )  # fmt: skip
    assert ("desk_hold_expired", DESK) in desk.templates()


def test_a_split_family_is_captured_once_at_the_first_shipment(desk: Desk) -> None:
    # Given an order split into a kept part and a backorder
    pi_id = desk.fake.create_authorized_intent(TOTAL, "eur")
    desk.feed(f.manufacturer(), f.envelope("inventory.set", sku="PAD", quantity=5),
              f.order("S1", lines=SPLIT_LINES, stripe_payment_intent_id=pi_id),
              f.envelope("order.split_requested", number="S1"))  # fmt: skip
    # When the kept part ships, and later the backorder
    desk.feed(shipped("S1"))
    desk.run_payments()
    desk.feed(f.envelope("inventory.received", sku="DRILL", quantity=1), shipped("S1-backorder"))
    desk.run_payments()
    # Then one capture of the whole authorization; both orders are paid
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]
    assert [(desk.order(n).paid, desk.order(n).payment_status) for n in ("S1", "S1-backorder")] == [
        (10_000, "paid"), (15_800, "paid"),
    ]  # fmt: skip


def test_a_backorder_shares_its_parents_known_hold_and_captures_without_a_read(
    desk: Desk,
) -> None:
    # Given a placement that says when its hold lapses, split into a kept part and a backorder
    expiry = (desk.now + timedelta(days=6)).replace(microsecond=0)
    pi_id = _placed_with_hold(desk, "S2", expiry, lines=SPLIT_LINES)
    desk.feed(f.envelope("inventory.set", sku="PAD", quantity=5),
              f.envelope("order.split_requested", number="S2"))  # fmt: skip
    assert desk.order("S2-backorder").capture_before == expiry
    # When the backorder ships first
    desk.feed(f.envelope("inventory.received", sku="DRILL", quantity=1), shipped("S2-backorder"))
    assert desk.run_payments() == []
    # Then the whole authorization is captured once, with no read of the intent first
    assert desk.fake.requests_for(pi_id) == {CAPTURE: 1}
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]


def test_cancel_releases_an_uncaptured_hold(desk: Desk) -> None:
    pi_id = desk.card_order("C6")
    desk.feed(f.envelope("order.cancelled", number="C6"))
    assert desk.run_payments() == []
    assert desk.fake.intent(pi_id)["status"] == "canceled"
    assert desk.fake.effect_counts() == {"create": 1, "cancel": 1}
    order = desk.order("C6")
    assert (order.fulfillment_status, order.hold_state, order.payment_status) == (
        "cancelled", "released", "voided",
    )  # fmt: skip


def test_a_refund_request_refunds_the_whole_order_once(desk: Desk) -> None:
    pi_id = desk.card_order("C7")
    desk.feed(shipped("C7"))
    desk.run_payments()
    desk.feed(f.envelope("order.refund_requested", number="C7"))
    desk.feed(f.envelope("order.refund_requested", number="C7"))
    desk.run_payments()
    assert desk.fake.effect_counts() == {"create": 1, "capture": 1, "refund": 1}
    order = desk.order("C7")
    assert (order.paid, order.payment_status) == (0, "refunded")
    with desk.db.sessions() as session:
        amounts = session.scalars(select(Payment.amount).order_by(Payment.id)).all()
    assert amounts == [TOTAL, -TOTAL]
    assert desk.fake.intent(pi_id)["latest_charge"]["amount_refunded"] == TOTAL
    assert desk.templates()[-1] == ("payment_refunded", "ada@example.com")


def test_cancelling_a_captured_backorder_refunds_its_share(desk: Desk) -> None:
    pi_id = desk.fake.create_authorized_intent(TOTAL, "eur")
    desk.feed(f.manufacturer(), f.envelope("inventory.set", sku="PAD", quantity=5),
              f.order("S2", lines=SPLIT_LINES, stripe_payment_intent_id=pi_id),
              f.envelope("order.split_requested", number="S2"), shipped("S2"))  # fmt: skip
    desk.run_payments()
    desk.feed(f.envelope("order.cancelled", number="S2-backorder"))
    desk.run_payments()
    assert desk.fake.effect_counts() == {"create": 1, "capture": 1, "refund": 1}
    assert desk.fake.intent(pi_id)["latest_charge"]["amount_refunded"] == 15_800
    assert [desk.order(n).payment_status for n in ("S2", "S2-backorder")] == ["paid", "refunded"]


def test_the_desk_knows_every_payment_job_on_the_payments_queue(desk: Desk) -> None:
    for name in ("payment.capture", "payment.cancel", "payment.refund", "stripe.reconcile"):
        assert desk.jobs.get(name).queue == "payments"
