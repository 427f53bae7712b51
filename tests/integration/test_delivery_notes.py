"""Delivery notes consume backlog SKUs (paid first, unbilled) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from models.db.commerce import DeliveryNote, DeliveryNoteLine
from models.db.engine import Database
from tests import factories as f
from tests.backlog_support import (
    BITS,
    DRILL,
    LEAFLET,
    TOTAL,
    apply,
    backlog_of,
    confirmed,
    count,
    delivered,
    eligible,
    last_job,
    placed,
    request,
    results,
    run_chunks,
)

pytestmark = pytest.mark.integration


def _note(number: str, *lines: tuple[str, int], reference: str | None = None) -> dict[str, object]:
    items = [{"sku": s, "quantity": q} for s, q in lines]
    return f.envelope("delivery_note.requested", number=number, lines=items, reference=reference)


def _setup(db: Database, *envelopes: dict[str, object]) -> None:
    outcomes = apply(db, f.manufacturer(), *envelopes)
    assert {o.result for o in outcomes} == {"applied"}, outcomes


def test_paid_backlog_is_delivered_without_billing(db: Database) -> None:
    # Given an order whose lines all became paid backlog
    _setup(db, *eligible("DN1"), request(["DN1"]))
    run_chunks(db)
    # When a note delivers 1 drill and the 3 bits
    _setup(db, _note("DN1", (DRILL, 1), (BITS, 3), reference="DN-7"))
    # Then paid backlog was taken, nothing billed
    assert delivered(db, "DN1") == [(DRILL, 1, False, 0), (BITS, 3, False, 0)]
    assert backlog_of(db, "DN1")[:3] == [
        ("paid", BITS, 3, 0), ("paid", DRILL, 2, 1), ("paid", LEAFLET, 1, 1),
    ]  # fmt: skip


def test_regular_backlog_is_billed_at_its_unit_price(db: Database) -> None:
    # Given a confirmed order paid on account (regular backlog only)
    _setup(db, placed("DN2", method="on_account"), confirmed("DN2"))
    # When two notes deliver 2 drills, then 1 bit and the leaflet
    _setup(db, _note("DN2", (DRILL, 2)), _note("DN2", (BITS, 1), (LEAFLET, 1)))
    # Then the drills and the bit are billed; the free leaflet bills 0
    assert delivered(db, "DN2") == [
        (DRILL, 2, True, 25_800), (BITS, 1, True, 500), (LEAFLET, 1, True, 0),
    ]  # fmt: skip
    assert backlog_of(db, "DN2") == [
        ("regular", BITS, 3, 2), ("regular", DRILL, 2, 0), ("regular", LEAFLET, 1, 0),
    ]  # fmt: skip


def test_a_note_beyond_the_backlog_is_refused_and_changes_nothing(db: Database) -> None:
    # Given 2 drills in backlog, of which a first note delivered both
    _setup(db, placed("DN3", method="on_account"), confirmed("DN3"), _note("DN3", (DRILL, 2)))
    before = backlog_of(db, "DN3")
    # When another note asks for 1 more drill and 1 bit (the bit alone would fit)
    outcome = apply(db, _note("DN3", (BITS, 1), (DRILL, 1)))[0]
    # Then it is refused with the reason; no note, line or quantity changed
    assert (outcome.result, outcome.reason) == ("quarantined", "exceeds_backlog")
    assert backlog_of(db, "DN3") == before
    assert (count(db, DeliveryNote), count(db, DeliveryNoteLine)) == (1, 1)


def test_an_unconfirmed_order_has_no_backlog_to_deliver(db: Database) -> None:
    _setup(db, placed("DN4", method="on_account"))
    outcome = apply(db, _note("DN4", (DRILL, 1)))[0]
    assert (outcome.result, outcome.reason) == ("quarantined", "exceeds_backlog")
    assert count(db, DeliveryNote) == 0


def test_an_order_with_a_delivery_note_gets_no_paid_backlog(db: Database) -> None:
    # Given an eligible order from which 1 drill was delivered (regular, billed)
    _setup(db, *eligible("DN5"), _note("DN5", (DRILL, 1)))
    # When paid backlog is requested
    _setup(db, request(["DN5"]))
    run_chunks(db)
    # Then it is skipped: its remaining regular backlog stays regular (billed when delivered)
    assert results(db, last_job(db).id) == {"DN5": ("skipped", "delivery_note_exists", 0)}
    assert [row[0] for row in backlog_of(db, "DN5")] == ["regular"] * 3


def test_lines_cannot_change_once_delivered(db: Database) -> None:
    # Given a confirmed order with a delivery note
    _setup(db, placed("DN6", method="on_account"), confirmed("DN6"), _note("DN6", (BITS, 1)))
    # When its lines change
    new_lines = [{"sku": DRILL, "quantity": 1, "unit_price": TOTAL, "is_insert": False}]
    outcome = apply(db, f.envelope("order.lines_changed", number="DN6", lines=new_lines))[0]
    # Then the change is refused and the backlog is as it was
    assert (outcome.result, outcome.reason) == ("quarantined", "lines_delivered")
    assert backlog_of(db, "DN6") == [
        ("regular", BITS, 3, 2), ("regular", DRILL, 2, 2), ("regular", LEAFLET, 1, 1),
    ]  # fmt: skip
