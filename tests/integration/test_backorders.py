"""Backorder split and restock release through the ingress, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from models.db.commerce import Inventory, Order, Restock, RestockDecision, StockReservation
from models.db.engine import Database
from models.db.machinery import Notification, OutboxJob, QuarantinedMessage
from models.db.orders import order_lines
from models.db.uow import UnitOfWork
from models.domain.backorders import ReleasePolicy
from models.domain.desk import DeskSettings
from tasks.intake.ingest import Outcome, ingest_batch
from tasks.outbox.egress import PUBLISH_JOB
from tests import factories as f
from tests.support import feed

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
DRILL, LEAFLET, BITS = "DRILL-18V", "LEAFLET-DE", "BITS-10"


def _lines(*items: tuple[str, int, bool]) -> list[dict[str, Any]]:
    return [{"sku": s, "quantity": q, "unit_price": 0 if i else 1000, "is_insert": i}
            for s, q, i in items]  # fmt: skip


def _apply(db: Database, *envelopes: dict[str, Any], policy: str = "skip_blocked") -> list[Outcome]:
    bodies = [f.body(e) for e in envelopes]
    desk = DeskSettings(backorder_policy=ReleasePolicy(policy))
    with UnitOfWork(db, lambda: T0, options=desk) as uow:
        outcomes = ingest_batch(uow, bodies, f.policy())
        uow.commit()
    return outcomes


def _stock(db: Database, levels: dict[str, int]) -> None:
    sets = [f.envelope("inventory.set", sku=sku, quantity=q) for sku, q in levels.items()]
    assert {o.result for o in feed(db, [f.body(e) for e in sets], f.policy(), T0)} == {"applied"}


def _place(db: Database, number: str, lines: list[dict[str, Any]], minutes: int = 0) -> None:
    placed_at = (T0 - timedelta(days=1) + timedelta(minutes=minutes)).isoformat()
    order = f.order(number, lines=lines, placed_at=placed_at)
    assert [o.result for o in _apply(db, f.manufacturer(), order)][-1] == "applied"


def _split(db: Database, number: str) -> Outcome:
    return _apply(db, f.envelope("order.split_requested", number=number))[0]


def _counts(db: Database) -> dict[str, int]:
    with db.sessions() as session:

        def count(model: type, *where: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        return {
            "orders": count(Order),
            "reservations": count(StockReservation),
            "notifications": count(Notification),
            "egress": count(OutboxJob, OutboxJob.job == PUBLISH_JOB.name),
        }


def _order(db: Database, number: str) -> tuple[str, int, list[tuple[str, int]]]:
    with db.sessions() as session:
        order = session.scalars(select(Order).where(Order.number == number)).one()
        lines = [(x.sku, x.quantity) for x in order_lines(session, order.id)]
        return order.fulfillment_status, order.total, lines


def _reserved(db: Database) -> dict[str, tuple[int, int]]:
    with db.sessions() as session:
        return {i.sku: (i.on_hand, i.reserved) for i in session.scalars(select(Inventory))}


def test_a_split_keeps_what_is_in_stock_and_moves_the_rest(db: Database) -> None:
    # Given 3 of 5 drills on hand, the leaflet in stock, bits out of stock
    _stock(db, {DRILL: 3, LEAFLET: 10})
    _place(db, "S1", _lines((DRILL, 5, False), (LEAFLET, 1, True), (BITS, 2, False)))
    # When the split is requested
    assert _split(db, "S1").result == "applied"
    # Then 3 drills and the leaflet stay (processing, reserved); 2 drills and the bits move
    assert _order(db, "S1") == ("processing", 3000, [(DRILL, 3), (LEAFLET, 1)])
    assert _order(db, "S1-backorder") == ("backordered", 4000, [(DRILL, 2), (BITS, 2)])
    assert _reserved(db) == {DRILL: (3, 3), LEAFLET: (10, 1)}
    assert _counts(db) == {"orders": 2, "reservations": 2, "notifications": 1, "egress": 0}
    with db.sessions() as session:
        note = session.scalars(select(Notification)).one()
        assert (note.template, note.context["backorder_number"]) == (
            "backorder_split",
            "S1-backorder",
        )
        backorder = session.scalars(select(Order).where(Order.number == "S1-backorder")).one()
        parent = session.scalars(select(Order).where(Order.number == "S1")).one()
        assert (backorder.parent_id, backorder.customer_id, backorder.payment_method) == (
            parent.id, parent.customer_id, parent.payment_method,
        )  # fmt: skip
        assert backorder.stripe_payment_intent_id == parent.stripe_payment_intent_id


@pytest.mark.parametrize(
    ("stock", "reason"),
    [
        ({DRILL: 5}, "only_inserts_out_of_stock"),
        ({DRILL: 5, LEAFLET: 5}, "nothing_out_of_stock"),
        ({LEAFLET: 5}, "nothing_in_stock"),
    ],
)
def test_a_refused_split_is_quarantined_with_its_reason_and_changes_nothing(
    db: Database, stock: dict[str, int], reason: str
) -> None:
    # Given an order of 2 drills and a leaflet insert
    _stock(db, stock)
    _place(db, "R1", _lines((DRILL, 2, False), (LEAFLET, 1, True)))
    before = _reserved(db)
    # When a split is requested
    outcome = _split(db, "R1")
    # Then it is refused with the reason, and nothing was split, reserved, sent or released
    assert (outcome.result, outcome.reason) == ("quarantined", reason)
    assert _order(db, "R1") == ("unfulfilled", 2000, [(DRILL, 2), (LEAFLET, 1)])
    assert _reserved(db) == before
    # (the one egress event is the refusal, reported to the producer)
    assert _counts(db) == {"orders": 1, "reservations": 0, "notifications": 0, "egress": 1}
    with db.sessions() as session:
        assert session.scalars(select(QuarantinedMessage.reason)).all() == [reason]
        event = session.scalars(select(OutboxJob.payload)).one()["event"]
        assert (event["type"], event["data"]["number"], event["data"]["reason"]) == (
            "message.refused", "R1", reason,
        )  # fmt: skip


def _backorder(db: Database, number: str, drills: int, minutes: int, bits: int = 0) -> None:
    """An order split so that `drills` drills (and `bits` bits) wait on a backorder."""
    _stock(db, {LEAFLET: 100, DRILL: 0, BITS: 0})
    lines = [(LEAFLET, 1, False), (DRILL, drills, False)] + ([(BITS, bits, False)] if bits else [])
    _place(db, number, _lines(*lines), minutes)
    assert _split(db, number).result == "applied"


def _receive(db: Database, sku: str, quantity: int, policy: str = "skip_blocked") -> None:
    received = f.envelope("inventory.received", sku=sku, quantity=quantity)
    assert [o.result for o in _apply(db, received, policy=policy)] == ["applied"]


def _decisions(db: Database) -> list[tuple[str, str, str]]:
    with db.sessions() as session:
        query = (
            select(Order.number, RestockDecision.outcome, RestockDecision.reason)
            .join(Order, Order.id == RestockDecision.order_id)
            .order_by(RestockDecision.id)
        )
        return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def test_a_restock_releases_oldest_first_and_records_why(db: Database) -> None:
    # Given three backorders: 4 drills (oldest), 1 drill, 2 drills + 1 bit (youngest)
    _backorder(db, "B1", 4, minutes=1)
    _backorder(db, "B2", 1, minutes=2)
    _backorder(db, "B3", 2, minutes=3, bits=1)
    # When 3 drills arrive (skip-blocked, the default)
    _receive(db, DRILL, 3)
    # Then B1 is skipped (short), B2 is released, B3 waits for bits
    assert _decisions(db) == [
        ("B1-backorder", "skipped", "short: DRILL-18V needs 4, 3 available"),
        ("B2-backorder", "released", "every line can be filled"),
        ("B3-backorder", "skipped", "short: BITS-10 needs 1, 0 available"),
    ]
    assert [_order(db, f"B{i}-backorder")[0] for i in (1, 2, 3)] == [
        "backordered", "processing", "backordered",
    ]  # fmt: skip
    assert _reserved(db)[DRILL] == (3, 1)
    # One fulfillment.submitted and one email for the released backorder
    counts = _counts(db)
    assert (counts["egress"], counts["notifications"]) == (1, 3 + 1)
    with db.sessions() as session:
        event = session.scalars(select(OutboxJob).where(OutboxJob.job == PUBLISH_JOB.name)).one()
        data = event.payload["event"]["data"]
        assert (event.payload["event"]["type"], data["number"], data["parent_number"]) == (
            "fulfillment.submitted", "B2-backorder", "B2",
        )  # fmt: skip
        assert data["lines"] == [{"sku": DRILL, "quantity": 1}]
        restock = session.scalars(select(Restock)).one()
        assert (restock.considered, restock.released, restock.skipped, restock.available_after) == (
            3, 1, 2, 2,
        )  # fmt: skip


def test_strict_releases_nobody_past_a_blocked_older_backorder(db: Database) -> None:
    _backorder(db, "T1", 4, minutes=1)
    _backorder(db, "T2", 1, minutes=2)
    _receive(db, DRILL, 3, policy="strict")
    assert _decisions(db) == [
        ("T1-backorder", "skipped", "short: DRILL-18V needs 4, 3 available"),
        ("T2-backorder", "skipped", "strict: waits behind T1-backorder"),
    ]
    # A restock that fills nobody leaves the stock available
    assert _reserved(db)[DRILL] == (3, 0)
    assert _counts(db)["egress"] == 0


def test_a_backorder_split_again_becomes_the_next_numbered_backorder(db: Database) -> None:
    _backorder(db, "A1", 2, minutes=1, bits=1)
    _stock(db, {BITS: 1})
    assert _split(db, "A1-backorder").result == "applied"
    assert _order(db, "A1-backorder") == ("processing", 1000, [(BITS, 1)])
    assert _order(db, "A1-backorder-2") == ("backordered", 2000, [(DRILL, 2)])


def test_shipping_takes_the_reserved_stock_off_hand(db: Database) -> None:
    _stock(db, {DRILL: 3, LEAFLET: 0})
    _place(db, "P1", _lines((DRILL, 2, False), (BITS, 1, False)))
    _stock(db, {BITS: 0})
    assert _split(db, "P1").result == "applied"
    assert _reserved(db)[DRILL] == (3, 2)
    shipped = f.envelope("order.shipped", number="P1")
    with UnitOfWork(db, lambda: T0) as uow:
        order_row = uow.session.scalars(select(Order).where(Order.number == "P1")).one()
        order_row.payment_method = "offline"  # card capture is another issue's concern here
        uow.commit()
    assert [o.result for o in _apply(db, shipped)] == ["applied"]
    assert _reserved(db)[DRILL] == (1, 0)
    assert _counts(db)["reservations"] == 0
