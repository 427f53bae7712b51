"""Issue 19's defects D1-D7, each replayed as it was found: messages through the ingress, the
payment and email jobs run in process against the Stripe fake over HTTP and a real SMTP sink;
effects counted at both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from models.db import paid_backlog
from models.db.commerce import BacklogSku, Invoice, Order
from models.db.machinery import OutboxJob, QuarantinedMessage, TimelineEvent
from models.domain.backlog import Unmet, unmet_conditions
from models.domain.errors import RetryableError
from tasks import log_context
from tasks.outbox.runner import run_outbox_job
from tests import factories as f
from tests.integration.stripe_desk import DESK, SPLIT_LINES, TOTAL, Desk, shipped
from workers.demo.smtp_sink import SmtpSink
from workers.runtime import email_job_spec
from workers.settings import Settings

pytestmark = pytest.mark.integration
CUSTOMER = "ada@example.com"
PAID = ("ada@example.com", "Payment received for order {}")
SHIPPED = ("ada@example.com", "Order {} has shipped")


@pytest.fixture
def sink(desk: Desk) -> Iterator[SmtpSink]:
    """A real SMTP server the send job delivers to, registered for this test's desk."""
    with SmtpSink.start() as server:
        desk.jobs.add(email_job_spec(Settings(smtp_url=server.url, _env_file=None)))
        yield server


def run_jobs(desk: Desk, rounds: int = 6) -> list[str]:
    """Run every pending payment and email job until none is left (bounded); errors seen."""
    errors: list[str] = []
    for _ in range(rounds):
        with desk.db.sessions() as session:
            query = select(OutboxJob.id).where(
                OutboxJob.status == "pending", OutboxJob.queue.in_(["payments", "notifications"])
            )
            due = session.scalars(query.order_by(OutboxJob.id)).all()
        if not due:
            break
        for job_id in due:
            # Each job in a log scope of its own, as the workers' middleware opens one.
            scope = log_context.enter({})
            try:
                run_outbox_job(desk.uow, job_id, 20, jobs=desk.jobs)
            except RetryableError as error:
                errors.append(error.reason)
            finally:
                log_context.leave(scope)
    return errors


def mails(sink: SmtpSink) -> list[tuple[str, str]]:
    """(recipient, subject) of every email the sink received, sorted."""
    return sorted((",".join(m.rcpt_tos), m.subject or "") for m in sink.messages)


def expect(*pairs: tuple[str, str], number: str) -> list[tuple[str, str]]:
    return sorted((to, subject.format(number)) for to, subject in pairs)


def results(desk: Desk, *envelopes: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o.result, o.reason) for o in desk.feed(*envelopes)]


def axes(desk: Desk, number: str) -> tuple[str, str, str, int]:
    order = desk.order(number)
    return (order.fulfillment_status, order.payment_status, order.hold_state, order.paid)


def refusals(desk: Desk, number: str) -> list[str]:
    """The order's `message.refused` timeline entries."""
    with desk.db.sessions() as session:
        order_id = desk.order(number).id
        query = select(TimelineEvent.summary).where(
            TimelineEvent.order_id == order_id, TimelineEvent.kind == "message.refused"
        )
        return list(session.scalars(query.order_by(TimelineEvent.id)))


def refused_events(desk: Desk) -> list[tuple[str, str | None, str]]:
    """(type, number, reason) of every `message.refused` egress event staged."""
    with desk.db.sessions() as session:
        query = select(OutboxJob.payload).where(OutboxJob.job == "egress.publish")
        payloads = session.scalars(query.order_by(OutboxJob.id))
        events = [p["event"] for p in payloads if p["event"]["type"] == "message.refused"]
    return [(e["data"]["type"], e["data"]["number"], e["data"]["reason"]) for e in events]


def fulfillment(number: str, status: str, minute: int) -> dict[str, Any]:
    return f.envelope("order.fulfillment_changed", number=number, status=status,
                      occurred_at=f"2026-03-03T10:{minute:02d}:00Z")  # fmt: skip


def test_d1_a_card_order_fulfilled_without_a_shipment_is_captured_once(
    desk: Desk, sink: SmtpSink
) -> None:
    # Given an authorized card order
    pi_id = desk.card_order("D1")
    # When it goes to processing, then fulfilled, with no order.shipped at all
    assert results(desk, fulfillment("D1", "processing", 1), fulfillment("D1", "fulfilled", 2)) == [
        ("applied", ""), ("applied", ""),
    ]  # fmt: skip
    assert run_jobs(desk) == []
    # Then its hold was captured once, for the database amount
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]
    assert axes(desk, "D1") == ("fulfilled", "paid", "captured", TOTAL)
    # And a late shipment is refused (fulfilled is final) and captures nothing more
    assert results(desk, shipped("D1")) == [("quarantined", "illegal_transition")]
    run_jobs(desk)
    assert desk.fake.effect_counts() == {"create": 1, "capture": 1}
    assert mails(sink) == expect(
        ("ada@example.com", "Order {} is being prepared"),
        ("ada@example.com", "Order {} is complete"),
        PAID,
        number="D1",
    )


def test_d2_a_payment_intent_serves_one_order_family(desk: Desk, sink: SmtpSink) -> None:
    # Given a card order, and a second order placed with the same PaymentIntent
    pi_id = desk.card_order("D2A")
    second = f.order("D2B", stripe_payment_intent_id=pi_id, placed_at="2026-03-02T09:00:00Z")
    # Then the second is refused, and the refusal is on the egress stream for its producer
    assert results(desk, second) == [("quarantined", "payment_intent_in_use")]
    assert refused_events(desk) == [("order.placed", "D2B", "payment_intent_in_use")]
    assert desk.count(Order, Order.number == "D2B") == 0
    # And shipping the first captures its own total once, and nobody is told of a failure
    desk.feed(shipped("D2A"))
    assert run_jobs(desk) == []
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]
    assert axes(desk, "D2A") == ("shipped", "paid", "captured", TOTAL)
    assert mails(sink) == expect(SHIPPED, PAID, number="D2A")


def test_d3_an_order_marked_paid_is_never_charged_again_and_its_hold_is_released(
    desk: Desk, sink: SmtpSink
) -> None:
    # Given a card order marked as paid in full by bank transfer
    pi_id = desk.card_order("D3")
    paid = f.envelope("payment.recorded", number="D3", amount=TOTAL, method="offline")
    assert results(desk, paid) == [("applied", "")]
    # When it ships
    desk.feed(shipped("D3"))
    assert run_jobs(desk) == []
    # Then nothing was captured, the hold was released once, and the order is paid, not overpaid
    assert desk.fake.captures_for(pi_id) == []
    assert desk.fake.effect_counts() == {"create": 1, "cancel": 1}
    assert axes(desk, "D3") == ("shipped", "paid", "released", TOTAL)
    assert mails(sink) == expect(PAID, SHIPPED, number="D3")


def test_d3_a_partial_manual_payment_leaves_only_the_rest_to_capture(
    desk: Desk, sink: SmtpSink
) -> None:
    pi_id = desk.card_order("D3P")
    desk.feed(f.envelope("payment.recorded", number="D3P", amount=800, method="offline"))
    desk.feed(shipped("D3P"))
    assert run_jobs(desk) == []
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL - 800]
    assert axes(desk, "D3P") == ("shipped", "paid", "captured", TOTAL)


def test_d4_invoices_never_exceed_what_the_order_owes(desk: Desk, sink: SmtpSink) -> None:
    # Given an order of 3,000 paid in full on account
    lines = [{"sku": "PAD", "quantity": 1, "unit_price": 3_000, "is_insert": False}]
    placed = f.order("D4", payment_method="on_account", stripe_payment_intent_id=None,
                     lines=lines, placed_at="2026-03-02T09:00:00Z")  # fmt: skip
    paid = f.envelope("payment.recorded", number="D4", amount=3_000, method="offline")
    desk.feed(f.manufacturer(), placed, paid)
    assert run_jobs(desk) == []
    assert mails(sink) == expect(PAID, number="D4")
    # When invoices of 6,000, then 2,000 and 1,000 more, arrive
    over = f.envelope("invoice.issued", number="D4", amount=6_000)
    fits = f.envelope("invoice.issued", number="D4", amount=2_000)
    beyond = f.envelope("invoice.issued", number="D4", amount=1_001)
    assert results(desk, over, fits, beyond) == [
        ("quarantined", "invoice_exceeds_owed"), ("applied", ""),
        ("quarantined", "invoice_exceeds_owed"),
    ]  # fmt: skip
    # Then only what fits is billed, and the order stays paid with its downloads allowed
    order = desk.order("D4")
    assert (order.invoiced, order.payment_status, order.download_allowed) == (2_000, "overpaid",
                                                                             True)  # fmt: skip
    assert desk.count(Invoice) == 1
    assert refusals(desk, "D4") == [
        "invoice.issued refused: invoice_exceeds_owed: the order owes 3000; invoiced 0, and 6000"
        " more would exceed it",
        "invoice.issued refused: invoice_exceeds_owed: the order owes 3000; invoiced 2000, and"
        " 1001 more would exceed it",
    ]
    # And lines that would owe less than is invoiced are refused too
    smaller = [{"sku": "PAD", "quantity": 1, "unit_price": 1_999, "is_insert": False}]
    change = f.envelope("order.lines_changed", number="D4", lines=smaller)
    assert results(desk, change) == [("quarantined", "invoice_exceeds_owed")]
    assert desk.order("D4").total == 3_000
    with desk.db.sessions() as session:
        held = session.scalars(select(QuarantinedMessage.reason).order_by(QuarantinedMessage.id))
        assert list(held) == ["invoice_exceeds_owed"] * 3
    # And the refusals told the customer nothing
    assert run_jobs(desk) == []
    assert sink.count() == 1


def _stock(desk: Desk, sku: str, quantity: int) -> None:
    desk.feed(f.envelope("inventory.set", sku=sku, quantity=quantity))


def _eligibility(desk: Desk, number: str) -> tuple[Unmet, ...]:
    with desk.db.sessions() as session:
        order_id = desk.order(number).id
        [(_, _, facts)] = paid_backlog.facts(session, [order_id])
        return unmet_conditions(facts)


def test_d5_a_card_backorder_is_confirmed_with_its_family_and_becomes_eligible(
    desk: Desk, sink: SmtpSink
) -> None:
    # Given a card order split before the manufacturer confirmed it
    pi_id = desk.fake.create_authorized_intent(TOTAL, "eur")
    _stock(desk, "PAD", 5)
    placed = f.order("D5", stripe_payment_intent_id=pi_id, lines=SPLIT_LINES,
                     placed_at="2026-03-02T09:00:00Z")  # fmt: skip
    split = f.envelope("order.split_requested", number="D5")
    assert results(desk, f.manufacturer(), placed, split)[-1] == ("applied", "")
    # When the original order is confirmed, and ships (capturing the whole hold)
    desk.feed(f.envelope("order.confirmed", number="D5"), shipped("D5"))
    assert run_jobs(desk) == []
    # Then the backorder is confirmed and paid, and eligible for paid backlog
    backorder = desk.order("D5-backorder")
    assert (backorder.confirmation_status, backorder.payment_status) == ("confirmed", "paid")
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]
    assert _eligibility(desk, "D5-backorder") == ()
    with desk.db.sessions() as session:
        rows = session.execute(select(BacklogSku.sku, BacklogSku.kind, BacklogSku.remaining)
                               .where(BacklogSku.order_id == backorder.id)).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [("DRILL", "regular", 1)]


def test_d6_shipped_goods_are_delivered_and_get_no_paid_backlog(desk: Desk, sink: SmtpSink) -> None:
    # Given a confirmed card order with its regular backlog
    pi_id = desk.card_order("D6")
    desk.feed(f.envelope("order.confirmed", number="D6"))
    # When it ships and is captured
    desk.feed(shipped("D6"))
    assert run_jobs(desk) == []
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]
    # Then nothing of it is undelivered, and paid backlog is refused with the reason
    with desk.db.sessions() as session:
        order_id = desk.order("D6").id
        remaining = session.scalars(select(BacklogSku.remaining)
                                    .where(BacklogSku.order_id == order_id)).all()  # fmt: skip
    assert remaining == [0, 0]  # the drill line and the leaflet insert
    assert _eligibility(desk, "D6") == (Unmet.SHIPPED,)


def test_d7_a_declined_capture_is_visible_and_the_hold_can_be_released(
    desk: Desk, sink: SmtpSink
) -> None:
    # Given a card order whose capture is declined at shipment
    pi_id = desk.card_order("D7", decline=True)
    desk.feed(shipped("D7"))
    assert run_jobs(desk) == []
    # Then the order shows the failure, the desk and the customer are each told once
    order = desk.order("D7")
    assert order.capture_failure == (
        "card_declined: HTTP 402; card_declined; decline_code=generic_decline; Your card was"
        " declined."
    )
    assert axes(desk, "D7") == ("shipped", "authorized", "held", 0)
    assert mails(sink) == expect(
        (DESK, "Card payment problem on order {}"),
        ("ada@example.com", "We could not take payment for order {}"),
        SHIPPED,
        number="D7",
    )
    # When the desk asks for a refund (nothing was captured: the live hold is released)
    refund = f.envelope("order.refund_requested", number="D7")
    desk.feed(refund, refund)
    assert run_jobs(desk) == []
    # Then one release at Stripe, the failure is settled, and no capture ever happened
    assert desk.fake.captures_for(pi_id) == []
    assert desk.fake.effect_counts() == {"create": 1, "cancel": 1}
    assert axes(desk, "D7") == ("shipped", "voided", "released", 0)
    assert desk.order("D7").capture_failure is None
    assert sink.count() == 3


def test_d7_a_total_above_the_hold_tells_the_desk_but_not_the_customer(
    desk: Desk, sink: SmtpSink
) -> None:
    # Given a card order whose hold is smaller than its total
    pi_id = desk.fake.create_authorized_intent(TOTAL - 100, "eur")
    placed = f.order("D7A", stripe_payment_intent_id=pi_id, placed_at="2026-03-02T09:00:00Z")
    desk.feed(f.manufacturer(), placed, shipped("D7A"))
    assert run_jobs(desk) == []
    # Then nothing was captured above the hold, the failure is kept, the desk alone is told
    assert desk.fake.captures_for(pi_id) == []
    failure = desk.order("D7A").capture_failure
    assert failure == (
        "amount_too_large: HTTP 400; amount_too_large; amount_to_capture must be less than or"
        " equal to the PaymentIntent's amount_capturable."
    )
    assert mails(sink) == expect((DESK, "Card payment problem on order {}"), SHIPPED,
                                 number="D7A")  # fmt: skip


def test_a_refund_made_in_stripes_dashboard_goes_to_the_member_that_still_holds_the_money(
    desk: Desk, sink: SmtpSink
) -> None:
    # Given a split card family captured whole at the first shipment (10,000 + 15,800)
    pi_id = desk.fake.create_authorized_intent(TOTAL, "eur")
    _stock(desk, "PAD", 5)
    placed = f.order("R1", stripe_payment_intent_id=pi_id, lines=SPLIT_LINES,
                     placed_at="2026-03-02T09:00:00Z")  # fmt: skip
    desk.feed(f.manufacturer(), placed, f.envelope("order.split_requested", number="R1"))
    desk.feed(shipped("R1"))
    assert run_jobs(desk) == []
    # And the original order refunded in full through orderflow
    desk.feed(f.envelope("order.refund_requested", number="R1"))
    assert run_jobs(desk) == []
    # When someone refunds 5,000 more in Stripe's dashboard, and its webhook event arrives
    desk.fake.ledger.create_refund({"payment_intent": pi_id, "amount": "5000"}, None)
    charge = desk.fake.intent(pi_id)["latest_charge"]["id"]
    charge_object = {"id": charge, "object": "charge", "metadata": {}}
    event = f.envelope(
        "stripe.event", id="evt_dashboard_1", type="charge.refunded", data={"object": charge_object}
    )
    assert results(desk, event) == [("applied", "")]
    assert run_jobs(desk) == []
    # Then the 5,000 is recorded on the backorder, which still held Stripe's money, and no
    # order has had more refunded than it was paid
    root, backorder = desk.order("R1"), desk.order("R1-backorder")
    assert (root.paid, root.payment_status) == (0, "refunded")
    assert (backorder.paid, backorder.payment_status) == (10_800, "partially_refunded")
    assert desk.fake.effect_counts() == {"create": 1, "capture": 1, "refund": 2}
