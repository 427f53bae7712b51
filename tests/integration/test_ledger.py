"""Ledger messages end to end through the ingest pipeline, on SQLite and PostgreSQL."""

from __future__ import annotations

import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models.db.commerce import Order, Payment
from models.db.engine import Database
from models.db.machinery import Notification
from tasks.intake import ingest
from tests import factories as f
from tests import support
from tests.support import migrated

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def feed(db: Database, *bodies: bytes) -> list[ingest.Outcome]:
    return support.feed(db, list(bodies), f.policy(), T0)


def payment(number: str, amount: int, **fields: Any) -> dict[str, Any]:
    return f.envelope("payment.recorded", number=number, amount=amount, **fields)


def invoice(number: str, amount: int) -> dict[str, Any]:
    return f.envelope("invoice.issued", number=number, amount=amount)


def state(db: Database, number: str) -> tuple[Any, ...]:
    with db.sessions() as session:
        o = session.scalars(select(Order).where(Order.number == number)).one()
        return (o.invoiced, o.paid, o.outstanding_balance, o.payment_status, o.download_allowed)


def place(db: Database, number: str, **fields: Any) -> None:
    assert [
        o.result for o in feed(db, f.body(f.manufacturer()), f.body(f.order(number, **fields)))
    ][-1] == "applied"


def test_invoices_payments_and_refunds_give_balances_and_statuses(db: Database) -> None:
    # Given an on-account order of 258.00 EUR
    place(db, "A1", payment_method="on_account", stripe_payment_intent_id=None)
    assert state(db, "A1") == (0, 0, 0, "pending", False)
    # When paid before it is invoiced, then invoiced, then partly refunded
    feed(db, f.body(payment("A1", 25_800)))
    assert state(db, "A1") == (0, 25_800, -25_800, "paid", True)
    feed(db, f.body(invoice("A1", 20_000)))
    assert state(db, "A1") == (20_000, 25_800, -5_800, "overpaid", True)
    feed(db, f.body(payment("A1", -5_800)))
    # Then
    assert state(db, "A1") == (20_000, 20_000, 0, "partially_refunded", False)


def test_a_payment_in_another_currency_is_refused_and_changes_nothing(db: Database) -> None:
    place(db, "C1")
    outcome = feed(db, f.body(payment("C1", 100, currency="USD")))[0]
    assert (outcome.result, outcome.reason) == ("quarantined", "currency_mismatch")
    assert state(db, "C1") == (0, 0, 0, "authorized", False)
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Payment)) == 0


def test_fifty_concurrent_payments_lose_no_update(db: Database) -> None:
    # Given one order and 50 payments delivered by 5 threads at once
    place(db, "P1", payment_method="offline", stripe_payment_intent_id=None)
    # 50 x 516 = 25,800: the order total, so the last one to count makes it paid.
    bodies = [f.body(payment("P1", 516, reference=f"wire-{i}")) for i in range(50)]
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def deliver(chunk: list[bytes]) -> None:
        barrier.wait(10)
        try:
            for body in chunk:
                feed(db, body)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=deliver, args=(bodies[i::5],)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    # Then every payment counts, exactly once
    assert errors == []
    assert state(db, "P1") == (0, 25_800, -25_800, "paid", True)
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Payment)) == 50


def test_fulfillment_moves_along_legal_transitions_and_refuses_others(db: Database) -> None:
    place(db, "F1")
    moves = [f.envelope("order.fulfillment_changed", number="F1", status=s)
             for s in ("processing", "on_hold", "fulfilled")]  # fmt: skip
    outcomes = feed(db, *(f.body(m) for m in moves))
    assert [(o.result, o.reason) for o in outcomes] == [
        ("applied", ""), ("applied", ""), ("quarantined", "illegal_transition"),
    ]  # fmt: skip
    with db.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.fulfillment_status == "on_hold"


ledger_steps = st.lists(
    st.one_of(
        # At most 8 x 3,000: whatever the order, the invoices never exceed the 25,800 owed.
        st.tuples(st.just("invoice"), st.integers(min_value=0, max_value=3_000)),
        st.tuples(
            st.just("payment"), st.integers(min_value=-30_000, max_value=60_000).filter(bool)
        ),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=ledger_steps, data=st.data())
def test_replaying_in_any_order_with_duplicates_gives_the_same_state(
    steps: list[tuple[str, int]], data: st.DataObject
) -> None:
    # Given one message per step
    messages = [invoice("R1", a) if kind == "invoice" else payment("R1", a) for kind, a in steps]
    bodies = [f.body(m) for m in messages]
    # When delivered in order, and separately shuffled with every message twice
    shuffled = data.draw(st.permutations(bodies + bodies))
    results = []
    for delivery in (bodies, shuffled):
        with tempfile.TemporaryDirectory() as tmp:
            db = migrated(f"sqlite:///{Path(tmp) / 'replay.sqlite3'}")
            place(db, "R1", payment_method="on_account", stripe_payment_intent_id=None)
            for body in delivery:
                feed(db, body)
            results.append(state(db, "R1"))
            db.dispose()
    # Then both end the same, and the balance is invoiced minus paid
    assert results[0] == results[1]
    invoiced = sum(a for k, a in steps if k == "invoice")
    paid = sum(a for k, a in steps if k == "payment")
    assert results[0][:3] == (invoiced, paid, invoiced - paid)


def test_a_fulfillment_change_that_happened_earlier_but_arrives_later_is_recorded_not_applied(
    db: Database,
) -> None:
    # Given an order that is fulfilled (happened at 12:03)
    place(db, "O1", payment_method="offline", stripe_payment_intent_id=None)

    def change(status: str, minute: int) -> bytes:
        return f.body(f.envelope("order.fulfillment_changed", number="O1", status=status,
                                 occurred_at=f"2026-03-04T12:0{minute}:00Z"))  # fmt: skip

    shipped = f.body(f.envelope("order.shipped", number="O1", tracking_numbers=["T1"],
                                occurred_at="2026-03-04T12:02:00Z"))  # fmt: skip
    feed(db, change("processing", 1), change("fulfilled", 3))
    # When the shipment (12:02) arrives after it, and then a newer illegal change (12:04)
    outcomes = feed(db, shipped, change("on_hold", 4))
    # Then the shipment is recorded with its tracking and email but the status stays fulfilled,
    # while the newer illegal move is still refused
    assert [(o.result, o.reason) for o in outcomes] == [
        ("applied", ""), ("quarantined", "illegal_transition"),
    ]  # fmt: skip
    with db.sessions() as session:
        order = session.scalars(select(Order)).one()
        kinds = sorted(session.scalars(select(Notification.kind)))
    assert (order.fulfillment_status, order.tracking_numbers) == ("fulfilled", ["T1"])
    assert kinds == ["fulfillment_fulfilled", "fulfillment_processing", "fulfillment_shipped"]
