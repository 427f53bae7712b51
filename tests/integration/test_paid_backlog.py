"""Paid-backlog creation through the ingress and the bulk chunks, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from models.db.bulk_jobs import BulkJob, BulkJobResult
from models.db.commerce import BacklogSku, Order
from models.db.engine import Database
from models.db.machinery import InboxEntry, OutboxJob, QuarantinedMessage
from models.db.uow import UnitOfWork
from tasks.backlog import paid as paid_backlog
from tasks.outbox.egress import PUBLISH_BATCH_JOB, event_id
from tests import factories as f
from tests.backlog_support import (
    BITS,
    DRILL,
    LEAFLET,
    LINES,
    T0,
    TOTAL,
    apply,
    backlog_of,
    confirmed,
    count,
    eligible,
    last_job,
    payment,
    placed,
    request,
    results,
    run_chunks,
)

pytestmark = pytest.mark.integration
PAID_ROWS = [("paid", BITS, 3, 3), ("paid", DRILL, 2, 2), ("paid", LEAFLET, 1, 1)]
EMPTIED_REGULAR = [("regular", BITS, 3, 0), ("regular", DRILL, 2, 0), ("regular", LEAFLET, 1, 0)]


def _setup(db: Database, *envelopes: dict[str, object]) -> None:
    outcomes = apply(db, f.manufacturer(), *envelopes)
    assert {o.result for o in outcomes} == {"applied"}, outcomes


def _events(db: Database) -> list[dict[str, Any]]:
    """The `paid_backlog.created` events staged so far (in their batch jobs)."""
    with db.sessions() as session:
        query = select(OutboxJob.payload).where(OutboxJob.job == PUBLISH_BATCH_JOB.name)
        return [e for payload in session.scalars(query.order_by(OutboxJob.id))
                for e in payload["events"]]  # fmt: skip


def _id(db: Database, number: str) -> int:
    with db.sessions() as session:
        return int(session.scalars(select(Order.id).where(Order.number == number)).one())


def test_confirmation_makes_regular_backlog_once_and_it_follows_line_changes(
    db: Database,
) -> None:
    # Given a placed order: no backlog before confirmation
    _setup(db, placed("RB1"))
    assert backlog_of(db, "RB1") == []
    # When it is confirmed twice
    _setup(db, confirmed("RB1"), confirmed("RB1"))
    # Then its lines are regular backlog, once
    assert backlog_of(db, "RB1") == [
        ("regular", BITS, 3, 3), ("regular", DRILL, 2, 2), ("regular", LEAFLET, 1, 1),
    ]  # fmt: skip
    # When its lines change (nothing delivered yet)
    new_lines = [{"sku": DRILL, "quantity": 5, "unit_price": 12_900, "is_insert": False}]
    _setup(db, f.envelope("order.lines_changed", number="RB1", lines=new_lines))
    # Then the regular backlog is the new lines
    assert backlog_of(db, "RB1") == [("regular", DRILL, 5, 5)]


def test_creation_moves_every_undelivered_quantity_to_paid_and_locks_the_lines(
    db: Database,
) -> None:
    # Given an eligible card order (confirmed, paid in full)
    _setup(db, *eligible("PB1"))
    # When paid backlog is requested and the chunk runs
    _setup(db, request(["PB1"]))
    assert run_chunks(db) == 1
    # Then each line is one paid backlog SKU; the regular backlog gave up its quantities
    assert backlog_of(db, "PB1") == PAID_ROWS + EMPTIED_REGULAR
    job = last_job(db)
    assert (job.status, job.orders_total, job.orders_done, job.created, job.skus_created) == (
        "done", 1, 1, 1, 3,
    )  # fmt: skip
    assert results(db, job.id) == {"PB1": ("created", "", 3)}
    assert _events(db) == [{"id": event_id(f"paid_backlog:{_id(db, 'PB1')}"),
                            "type": "paid_backlog.created", "version": 1,
                            "occurred_at": T0.isoformat(), "data": {
        "number": "PB1", "job_id": job.id,
        "skus": [{"sku": BITS, "quantity": 3}, {"sku": DRILL, "quantity": 2},
                 {"sku": LEAFLET, "quantity": 1}]}}]  # fmt: skip
    # When a line change arrives afterwards
    new_lines = [{"sku": DRILL, "quantity": 9, "unit_price": 1, "is_insert": False}]
    outcome = apply(db, f.envelope("order.lines_changed", number="PB1", lines=new_lines))[0]
    # Then it is refused with the reason and changes nothing
    assert (outcome.result, outcome.reason) == ("quarantined", "lines_locked")
    assert backlog_of(db, "PB1") == PAID_ROWS + EMPTIED_REGULAR
    with db.sessions() as session:
        order = session.scalars(select(Order).where(Order.number == "PB1")).one()
        assert (order.lines_locked, order.total) == (True, TOTAL)


def test_a_repeated_request_creates_nothing_and_reports_already_created(db: Database) -> None:
    # Given paid backlog created for PB2 by one request
    _setup(db, *eligible("PB2"))
    first = request(["PB2"])
    _setup(db, first)
    run_chunks(db)
    # When the same envelope comes again, and then another envelope asking the same
    again = apply(db, first)[0]
    _setup(db, request(["PB2"]))
    run_chunks(db)
    # Then the copy is a duplicate, the new request creates nothing: already_created
    assert again.result == "duplicate"
    assert count(db, BulkJob) == 2
    assert results(db, last_job(db).id) == {"PB2": ("already_created", "paid_backlog_exists", 0)}
    assert count(db, BacklogSku, BacklogSku.kind == "paid") == 3
    assert count(db, InboxEntry, InboxEntry.type == "paid_backlog.requested") == 2


def test_a_dry_run_reports_what_would_happen_and_changes_nothing(db: Database) -> None:
    # Given an eligible order and one never confirmed
    _setup(db, *eligible("DR1"), placed("DR2"), payment("DR2", TOTAL))
    # When a dry run is requested for both
    _setup(db, request(["DR1", "DR2"], dry_run=True))
    run_chunks(db)
    # Then it reports, and nothing was created or locked
    job = last_job(db)
    assert results(db, job.id) == {
        "DR1": ("would_create", "", 3), "DR2": ("skipped", "not_confirmed", 0),
    }  # fmt: skip
    assert (job.dry_run, job.created, job.skus_created, job.skipped) == (True, 1, 3, 1)
    assert count(db, BacklogSku, BacklogSku.kind == "paid") == 0
    assert count(db, Order, Order.lines_locked.is_(True)) == 0
    assert _events(db) == []


def test_skipped_orders_name_every_unmet_condition(db: Database) -> None:
    # Given orders missing one or more conditions, an eligible one, and a number nobody knows
    _setup(
        db,
        *eligible("OK1"),
        placed("ACC", method="on_account"), confirmed("ACC"), payment("ACC", TOTAL),
        placed("HALF"), confirmed("HALF"), payment("HALF", 100),
        placed("REF"), confirmed("REF"), payment("REF", TOTAL), payment("REF", -TOTAL),
        *eligible("ARC"), f.envelope("order.archived", number="ARC"),
        placed("NEW"),
    )  # fmt: skip
    # When one request names them all
    _setup(db, request(["OK1", "ACC", "HALF", "REF", "ARC", "NEW", "NOPE"]))
    assert run_chunks(db) == 1
    # Then each result names exactly the conditions it misses
    job = last_job(db)
    assert results(db, job.id) == {
        "OK1": ("created", "", 3),
        "ACC": ("skipped", "not_card", 0),
        "HALF": ("skipped", "not_paid", 0),
        "REF": ("skipped", "not_paid,refunded", 0),
        "ARC": ("skipped", "archived", 0),
        "NEW": ("skipped", "not_paid,not_confirmed", 0),
        "NOPE": ("unknown_order", "unknown_order", 0),
    }
    assert (job.created, job.skipped, job.unknown, job.orders_done) == (1, 5, 1, 7)
    assert count(db, BacklogSku, BacklogSku.kind == "paid") == 3


def test_all_eligible_takes_every_eligible_order_in_bounded_chunks(db: Database) -> None:
    # Given five eligible orders and two that are not
    _setup(db, *[e for n in range(5) for e in eligible(f"AE{n}")], placed("AX1"), placed("AX2"))
    # When every eligible order is asked for, two orders per chunk
    with UnitOfWork(db, lambda: T0) as uow:
        job_id = paid_backlog.start_job(uow, order_numbers=None, dry_run=False, source="cli",
                                        chunk_size=2)  # fmt: skip
        uow.commit()
    # Then three chunks took exactly the eligible orders
    assert run_chunks(db) == 3
    assert set(results(db, job_id)) == {f"AE{n}" for n in range(5)}
    assert {r[0] for r in results(db, job_id).values()} == {"created"}
    assert count(db, BacklogSku, BacklogSku.kind == "paid") == 15
    job = last_job(db)
    assert (job.chunks_total, job.chunks_done, job.status, job.request) == (
        3, 3, "done", {"all_eligible": True, "dry_run": False},
    )  # fmt: skip


def test_a_chunk_run_again_changes_nothing_twice(db: Database) -> None:
    # Given a chunk that has run over an eligible order, an unknown one and an unconfirmed one
    _setup(db, *eligible("RR1"), placed("RR3"), payment("RR3", TOTAL),
           request(["RR1", "RR2", "RR3"]))  # fmt: skip
    run_chunks(db)
    with db.sessions() as session:
        query = select(OutboxJob.payload).where(OutboxJob.job == "paid_backlog.chunk")
        payload = session.scalars(query).one()
    # When the unconfirmed order is confirmed since, and the chunk's body runs again (as a
    # retry that got past the outbox would)
    _setup(db, confirmed("RR3"))
    with UnitOfWork(db, lambda: T0) as uow:
        paid_backlog.run_chunk(uow, dict(payload))
        uow.commit()
    # Then no row, result or count was added: the job still says what it did then
    job = last_job(db)
    assert (job.chunks_done, job.orders_done, job.created, job.skipped, job.unknown) == (
        1, 3, 1, 1, 1,
    )  # fmt: skip
    assert count(db, BulkJobResult) == 3
    assert count(db, BacklogSku, BacklogSku.kind == "paid") == 3
    assert [e["data"]["number"] for e in _events(db)] == ["RR1"]


def test_a_split_keeps_regular_backlog_in_step_with_both_orders(db: Database) -> None:
    # Given a confirmed order of 2 drills and 3 bits, with 2 drills and 1 bit in stock
    stock = [f.envelope("inventory.set", sku=s, quantity=q) for s, q in ((DRILL, 2), (BITS, 1))]
    _setup(db, *stock, placed("SP1", lines=LINES[:2]), confirmed("SP1"))
    # When it is split
    _setup(db, f.envelope("order.split_requested", number="SP1"))
    # Then the order's regular backlog is what it kept, the backorder's what moved
    assert backlog_of(db, "SP1") == [("regular", BITS, 1, 1), ("regular", DRILL, 2, 2)]
    assert backlog_of(db, "SP1-backorder") == [("regular", BITS, 2, 2)]


def test_a_request_with_a_bad_body_is_quarantined_not_crashing(db: Database) -> None:
    raw = f.envelope("paid_backlog.requested", order_numbers=["A", "A"])
    assert apply(db, raw)[0].reason == "schema_violation"
    assert count(db, QuarantinedMessage) == 1
    assert count(db, BulkJob) == 0
