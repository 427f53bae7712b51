"""Shipments in one ingress batch are applied set-based and their captures made by one job:
the same effects as one by one, each capture once, and one capture's trouble (unclear, declined,
failing to record) never costs the others theirs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select, update

from models.db import stock
from models.db.commerce import Inventory, Order
from models.db.machinery import ExternalOperation, OutboxJob, TimelineEvent
from tasks.payments import running as payments
from tasks.payments.recording import Captured
from tests import factories as f
from tests.fakes.stripe_faults import FaultKind
from tests.integration.stripe_desk import CAPTURE, DESK, SPLIT_LINES, TOTAL, Desk, shipped

pytestmark = pytest.mark.integration
PAID = ("shipped", "paid", "captured", TOTAL)


def _card_orders(desk: Desk, prefix: str, count: int, **intent: Any) -> list[str]:
    numbers = [f"{prefix}{i}" for i in range(count)]
    for number in numbers:
        desk.card_order(number, **intent)
    return numbers


def _state(desk: Desk, number: str) -> tuple[str, str, str, int]:
    order = desk.order(number)
    return order.fulfillment_status, order.payment_status, order.hold_state, order.paid


def _effects(desk: Desk, prefix: str) -> dict[str, list[Any]]:
    """What shipping the orders numbered `prefix`N did, with the prefix and ids dropped."""
    with desk.db.sessions() as session:
        orders = session.execute(
            select(Order.number, Order.fulfillment_status, Order.tracking_numbers, Order.carrier)
            .where(Order.number.startswith(prefix)).order_by(Order.number)
        ).all()  # fmt: skip
        timeline = session.execute(
            select(Order.number, TimelineEvent.kind, TimelineEvent.summary)
            .join(Order, Order.id == TimelineEvent.order_id)
            .where(Order.number.startswith(prefix), TimelineEvent.kind == "order.shipped")
            .order_by(Order.number)
        ).all()  # fmt: skip
        ops = session.execute(
            select(Order.number, ExternalOperation.kind, ExternalOperation.amount,
                   ExternalOperation.status)
            .join(Order, Order.id == ExternalOperation.order_id)
            .where(Order.number.startswith(prefix)).order_by(Order.number)
        ).all()  # fmt: skip
    return {
        "orders": [(n[len(prefix) :], *rest) for n, *rest in orders],
        "timeline": [(n[len(prefix) :], *rest) for n, *rest in timeline],
        "ops": [(n[len(prefix) :], *rest) for n, *rest in ops],
    }


def _capture_jobs(desk: Desk) -> list[tuple[str, dict[str, Any]]]:
    with desk.db.sessions() as session:
        query = select(OutboxJob.key, OutboxJob.payload).where(OutboxJob.job == "payment.capture")
        rows = session.execute(query.order_by(OutboxJob.id))
        return [(key, dict(payload)) for key, payload in rows]


def test_a_run_of_shipments_has_the_effects_of_one_by_one(desk: Desk) -> None:
    # Given two sets of the same four card orders, each set with one order holding stock
    runs, alone = _card_orders(desk, "R", 4), _card_orders(desk, "S", 4)
    desk.feed(f.envelope("inventory.set", sku="DRILL-18V", quantity=10))
    holding = [desk.order(number).id for number in ("R1", "S1")]
    with desk.uow() as uow:
        for order_id in holding:
            stock.reserve(uow.session, order_id, {"DRILL-18V": 2}, desk.now)
        uow.commit()

    # When one set ships in one batch and the other one shipment a batch
    def ship(n: str) -> dict[str, Any]:
        return shipped(n, tracking_numbers=[f"T-{n[1:]}"], notify_customer=True)

    in_run = [o.result for o in desk.feed(*(ship(n) for n in runs))]
    one_by_one = [o.result for n in alone for o in desk.feed(ship(n))]
    # Then every effect is the same
    assert in_run == one_by_one == ["applied"] * 4
    assert _effects(desk, "R") == _effects(desk, "S")
    assert _effects(desk, "R")["timeline"][0] == (
        "0", "order.shipped", "fulfillment unfulfilled -> shipped; capture of 25800 EUR "
        "requested; tracking T-0",
    )  # fmt: skip
    assert [op[1:] for op in _effects(desk, "R")["ops"]] == [("capture", TOTAL, "pending")] * 4
    assert [(t, r) for t, r in desk.templates() if t == "fulfillment_shipped"] == [
        ("fulfillment_shipped", "ada@example.com")
    ] * 8
    with desk.db.sessions() as session:
        drill = session.get(Inventory, "DRILL-18V")
        assert drill is not None
        assert (drill.on_hand, drill.reserved) == (6, 0)  # both orders' two drills left
    # And the run's captures are one job, the others one job each
    jobs = _capture_jobs(desk)
    assert [len(p.get("operation_ids", [0])) for _, p in jobs] == [4, 1, 1, 1, 1]
    assert jobs[0][0].startswith("captures:")


@contextmanager
def _executed(desk: Desk) -> Iterator[list[tuple[str, int]]]:
    """Each statement sent meanwhile, with the number of rows of parameters it carried."""
    seen: list[tuple[str, int]] = []

    def count(*args: Any) -> None:
        statement, parameters, executemany = str(args[2]), args[3], args[5]
        seen.append((statement, len(parameters) if executemany else 1))

    event.listen(desk.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(desk.db.engine, "before_cursor_execute", count)


def _statements(desk: Desk, run: list[dict[str, Any]]) -> int:
    with _executed(desk) as seen:
        assert [o.result for o in desk.feed(*run)] == ["applied"] * len(run)
    return len(seen)


def test_a_run_of_shipments_is_a_fixed_number_of_statements(desk: Desk) -> None:
    numbers = _card_orders(desk, "F", 30)
    small, large = numbers[:5], numbers[5:]
    counts = [_statements(desk, [shipped(n) for n in run]) for run in (small, large)]
    assert counts[0] == counts[1]
    assert desk.count(ExternalOperation) == 30


def test_one_job_captures_every_order_of_a_run_once(desk: Desk) -> None:
    # Given six card orders shipped in one batch
    numbers = _card_orders(desk, "B", 6)
    desk.feed(*(shipped(n) for n in numbers))
    # When the payment jobs run, and the capture job is delivered once more
    assert desk.run_payments() == []
    _redeliver(desk)
    assert desk.run_payments() == []
    # Then each intent was read and captured once, and each order is paid, told and published
    assert desk.fake.effect_counts() == {"create": 6, "capture": 6}
    assert desk.fake.requests.get(CAPTURE) == 6
    assert desk.fake.requests.get(("GET", "/v1/payment_intents/{id}")) == 6
    assert [_state(desk, n) for n in numbers] == [PAID] * 6
    assert desk.templates().count(("payment_paid", "ada@example.com")) == 6
    # One job publishes the run's six events, each under its own id
    with desk.db.sessions() as session:
        query = select(OutboxJob.payload).where(OutboxJob.job == "egress.publish_batch")
        batches = session.scalars(query).all()
    assert [[e["type"] for e in b["events"]] for b in batches] == [["payment.captured"] * 6]
    assert len({e["id"] for e in batches[0]["events"]}) == 6
    assert desk.count(OutboxJob, OutboxJob.job == "egress.publish") == 0
    with desk.db.sessions() as session:
        ops = session.execute(select(ExternalOperation.status, ExternalOperation.attempts)).all()
    assert [tuple(op) for op in ops] == [("done", 1)] * 6


def test_recording_a_batch_of_captures_writes_each_order_once(desk: Desk) -> None:
    # Given five card orders shipped in one batch
    numbers = _card_orders(desk, "W", 5)
    desk.feed(*(shipped(n) for n in numbers))
    # When the capture job runs
    with _executed(desk) as seen:
        assert desk.run_payments() == []
    # Then each order's row was written once, its hold state and ledger figures together
    assert sum(rows for statement, rows in seen if statement.startswith("UPDATE orders")) == 5
    assert [_state(desk, n) for n in numbers] == [PAID] * 5


def _redeliver(desk: Desk) -> None:
    """The capture job is pending again, as if its first delivery had died after recording."""
    with desk.db.sessions() as session, session.begin():
        session.execute(update(OutboxJob).where(OutboxJob.job == "payment.capture")
                        .values(status="pending"))  # fmt: skip


def test_an_unclear_and_a_declined_capture_leave_the_rest_of_the_batch_recorded(
    desk: Desk,
) -> None:
    # Given four orders shipped together: the second's capture fails after Stripe captured,
    # the third's card is declined
    first, second = desk.card_order("U0"), desk.card_order("U1")
    declined, last = desk.card_order("U2", decline=True), desk.card_order("U3")
    fault = FaultKind.SERVER_ERROR_AFTER
    desk.fake.faults.inject_next(rf"/payment_intents/{second}/capture$", fault)
    desk.feed(*(shipped(f"U{i}") for i in range(4)))
    # When the job runs, is retried for the unclear one, and runs again
    errors = desk.run_payments()
    # Then the unclear capture was read back and recorded once, on the retry
    assert errors == ["stripe_server_error"]
    captured = {pi: len(desk.fake.captures_for(pi)) for pi in (first, second, declined, last)}
    assert captured == {first: 1, second: 1, declined: 0, last: 1}
    assert [_state(desk, f"U{i}") for i in (0, 1, 3)] == [PAID] * 3
    assert _state(desk, "U2") == ("shipped", "authorized", "held", 0)
    with desk.db.sessions() as session:
        ops = session.execute(
            select(Order.number, ExternalOperation.status, ExternalOperation.attempts)
            .join(Order, Order.id == ExternalOperation.order_id).order_by(Order.number)
        ).all()  # fmt: skip
    assert [tuple(op) for op in ops] == [
        ("U0", "done", 1), ("U1", "done", 2), ("U2", "failed", 1), ("U3", "done", 1),
    ]  # fmt: skip
    # The declined one is told to the desk and its customer once, and never tried again
    failed = [t for t in desk.templates() if t[0] in ("desk_capture_failed", "payment_failed")]
    assert failed == [("desk_capture_failed", DESK), ("payment_failed", "ada@example.com")]
    assert desk.fake.requests_for(declined).get(CAPTURE) == 1


def test_an_outcome_that_fails_to_record_costs_the_others_nothing(desk: Desk) -> None:
    # Given three recorded-to-be outcomes, the middle one failing
    numbers = _card_orders(desk, "X", 2)
    desk.feed(*(shipped(n) for n in numbers))
    with desk.db.sessions() as session:
        op_ids = list(session.scalars(select(ExternalOperation.id).order_by(ExternalOperation.id)))

    def broken(uow: Any) -> None:
        raise RuntimeError("cannot record this one")

    records: list[payments.Record] = [
        Captured(op_ids[0], TOTAL, "ch_x0"),
        broken,
        Captured(op_ids[1], TOTAL, "ch_x1"),
    ]
    # When they are recorded together
    with pytest.raises(RuntimeError, match="cannot record this one"):
        payments.settle_all(desk.uow, records)
    # Then the two good ones landed, each once
    assert [_state(desk, n)[1:] for n in numbers] == [("paid", "captured", TOTAL)] * 2
    assert desk.count(ExternalOperation, ExternalOperation.status == "done") == 2
    assert desk.fake.effect_counts() == {"create": 2}


def test_a_run_holding_a_split_family_goes_one_by_one_and_captures_it_whole(desk: Desk) -> None:
    # Given an order split into a kept part and a backorder, and a plain card order
    pi_id = desk.fake.create_authorized_intent(TOTAL, "eur")
    desk.feed(f.manufacturer(), f.envelope("inventory.set", sku="PAD", quantity=5),
              f.order("K1", lines=SPLIT_LINES, stripe_payment_intent_id=pi_id),
              f.envelope("order.split_requested", number="K1"))  # fmt: skip
    plain = desk.card_order("K2")
    # When the kept part and the plain order ship in one batch
    assert [o.result for o in desk.feed(shipped("K1"), shipped("K2"))] == ["applied"] * 2
    assert desk.run_payments() == []
    # Then the family's whole authorization is captured once, and the plain order's
    assert [e.amount for e in desk.fake.captures_for(pi_id)] == [TOTAL]
    assert [e.amount for e in desk.fake.captures_for(plain)] == [TOTAL]
    assert [len(p.get("operation_ids", [0])) for _, p in _capture_jobs(desk)] == [1, 1]
    assert [desk.order(n).paid for n in ("K1", "K1-backorder", "K2")] == [10_000, 15_800, TOTAL]


def test_a_run_with_a_refused_shipment_goes_one_by_one(desk: Desk) -> None:
    # Given three card orders, the middle one on hold (it may not ship straight from there)
    numbers = _card_orders(desk, "H", 3)
    desk.feed(f.envelope("order.fulfillment_changed", number="H1", status="on_hold"))
    # When all three ship in one batch
    outcomes = desk.feed(*(shipped(n) for n in numbers))
    # Then the other two ship and are captured; the held one is quarantined with its reason
    assert [(o.result, o.reason) for o in outcomes] == [
        ("applied", ""), ("quarantined", "illegal_transition"), ("applied", ""),
    ]  # fmt: skip
    assert desk.run_payments() == []
    assert [_state(desk, n) for n in ("H0", "H2")] == [PAID] * 2
    assert _state(desk, "H1") == ("on_hold", "authorized", "held", 0)
    assert desk.fake.effect_counts() == {"create": 3, "capture": 2}
