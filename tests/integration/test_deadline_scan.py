"""The confirmation scan on SQLite and PostgreSQL: each late order is marked once and its messages
are staged in the same transaction, however often, concurrently or late the scan runs."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from models.db.deadlines import overdue_query
from models.db.engine import Database
from models.db.tables import Notification, Order, OutboxJob, TimelineEvent
from models.db.uow import UnitOfWork
from tasks.deadlines.scan import Progress, mark_overdue, run_tick
from tests import factories as f
from tests.support import feed
from workers.cli.orders import order_details

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin (the sample OEM's zone)
DUE = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # SLA 1: Tuesday's close, 15:00 in Berlin
SUNDAY_DUE = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # placed on Sunday: Monday's close
OEM_EMAIL, OEM_URL = "orders@acme.example", "https://acme.example/hooks/orderflow"
FAILURE = "oem_confirmation_failure"


def _place(db: Database, numbers: list[str], placed_at: datetime) -> None:
    bodies = [f.body(f.manufacturer())]
    bodies += [f.body(f.order(n, placed_at=placed_at.isoformat())) for n in numbers]
    outcomes = feed(db, bodies, f.policy(), placed_at)
    assert {o.result for o in outcomes} <= {"applied", "duplicate"}


def _scan(db: Database, at: datetime, per_tick: int = 1000, batch: int = 200) -> Progress:
    return run_tick(lambda: UnitOfWork(db, lambda: at), at, mark_overdue, per_tick, batch)


def _messages(db: Database) -> Counter[tuple[str, str, str]]:
    with db.sessions() as session:
        rows = session.execute(select(Notification.channel, Notification.kind,
                                      Notification.recipient))  # fmt: skip
        return Counter((channel, kind, to) for channel, kind, to in rows)


def _jobs(db: Database) -> Counter[str]:
    with db.sessions() as session:
        return Counter(session.scalars(select(OutboxJob.job)))


def _overdue(db: Database) -> dict[str, datetime | None]:
    with db.sessions() as session:
        query = select(Order.number, Order.confirmation_overdue_at).where(
            Order.confirmation_overdue
        )
        return dict(session.execute(query.order_by(Order.number)).all())


def test_late_orders_are_marked_once_with_one_message_per_channel_and_one_event(
    db: Database,
) -> None:
    # Given three orders due at Tuesday's close and one due a day later
    _place(db, ["M0", "M1", "M2"], T0)
    _place(db, ["M3"], T0 + timedelta(days=1))
    # When the scan runs a second before the deadline, at it, and again
    before = _scan(db, DUE - timedelta(seconds=1))
    at = _scan(db, DUE)
    again = _scan(db, DUE + timedelta(minutes=1))
    # Then the three were marked once, with an email and a webhook each
    assert (before, at, again) == (Progress(0, 0), Progress(3, 6), Progress(0, 0))
    assert _overdue(db) == {"M0": DUE, "M1": DUE, "M2": DUE}
    assert _messages(db) == Counter(
        {("email", FAILURE, OEM_EMAIL): 3, ("webhook", FAILURE, OEM_URL): 3}
    )
    # And the outbox holds one send per message and one outbound event per order
    assert _jobs(db) == Counter(
        {"notification.send": 3, "notification.webhook": 3, "egress.publish": 3}
    )
    with db.sessions() as session:
        query = select(OutboxJob.payload).where(OutboxJob.job == "egress.publish")
        events = [payload["event"] for payload in session.scalars(query)]
        types = Counter(e["type"] for e in events)
        breach = TimelineEvent.kind == "order.confirmation_overdue"
        timeline = session.scalars(select(TimelineEvent.kind).where(breach)).all()
    assert types == Counter({"order.confirmation_overdue": 3})
    assert min(events, key=lambda e: e["data"]["number"])["data"] == {
        "number": "M0", "manufacturer_id": "oem-acme", "placed_at": T0.isoformat(),
        "confirmation_deadline": DUE.isoformat(), "overdue_at": DUE.isoformat(),
        "confirmation_status": "new",
    }  # fmt: skip
    assert len(timeline) == 3


def test_a_late_confirmation_confirms_the_order_and_the_breach_stays_on_record(
    db: Database,
) -> None:
    # Given an order marked overdue
    _place(db, ["M0"], T0)
    assert _scan(db, DUE) == Progress(1, 2)
    # When the manufacturer confirms it an hour late
    late = DUE + timedelta(hours=1)
    confirmed = f.envelope("order.confirmed", number="M0", at=late.isoformat())
    assert [o.result for o in feed(db, [f.body(confirmed)], f.policy(), late)] == ["applied"]
    # Then it is confirmed, still breached (since the scan found it), and never messaged again
    assert _scan(db, late + timedelta(hours=1)) == Progress(0, 0)
    with db.sessions() as session:
        details = order_details(session, "M0")
    assert details is not None
    assert (details["confirmation_status"], details["deadline_breached"],
            details["deadline_breached_at"]) == ("confirmed", True, DUE.isoformat())  # fmt: skip
    customer = ("email", "order_confirmed", "ada@example.com")
    assert _messages(db) == Counter(
        {("email", FAILURE, OEM_EMAIL): 1, ("webhook", FAILURE, OEM_URL): 1, customer: 1}
    )


def test_confirmed_archived_and_cancelled_orders_are_never_selected(db: Database) -> None:
    # Given four late orders: one confirmed in time, one archived, one cancelled, one waiting
    _place(db, ["OK", "ARCH", "CANC", "LATE"], T0)
    in_time = f.envelope("order.confirmed", number="OK", at=T0.isoformat())
    archived = f.envelope("order.archived", number="ARCH")
    feed(db, [f.body(in_time), f.body(archived)], f.policy(), T0)
    with db.sessions() as session, session.begin():
        session.execute(update(Order).where(Order.number == "CANC")
                        .values(fulfillment_status="cancelled"))  # fmt: skip
    # When the scan runs well after the deadline
    done = _scan(db, DUE + timedelta(days=3))
    # Then only the waiting order is marked and messaged
    assert done == Progress(1, 2)
    assert list(_overdue(db)) == ["LATE"]
    with db.sessions() as session:
        failures = select(Order.number).join(Notification, Notification.order_id == Order.id)
        messaged = session.scalars(failures.where(Notification.kind == FAILURE)).all()
    assert messaged == ["LATE", "LATE"]


def test_a_clock_jump_forward_catches_up_every_missed_deadline_once_rate_limited(
    db: Database,
) -> None:
    # Given ten orders placed on Sunday (due Monday's close) and a scan that saw none due
    _place(db, [f"S{i}" for i in range(10)], T0 - timedelta(days=1))
    assert _scan(db, T0, per_tick=4, batch=3) == Progress(0, 0)
    # When the clock jumps forward 25 hours and the scan runs tick after tick
    jumped = T0 + timedelta(hours=25)
    ticks = [_scan(db, jumped + timedelta(seconds=s), per_tick=4, batch=3) for s in range(4)]
    # Then at most four orders are marked per tick, every one once
    assert [t.taken for t in ticks] == [4, 4, 2, 0]
    assert len(_overdue(db)) == 10
    assert set(_overdue(db).values()) == {jumped, jumped + timedelta(seconds=1),
                                          jumped + timedelta(seconds=2)}  # fmt: skip
    assert sum(_messages(db).values()) == 20


def test_a_clock_jump_backward_sends_nothing_early(db: Database) -> None:
    # Given an order due Monday's close and one due Tuesday's, scanned on Monday evening
    _place(db, ["SUN"], T0 - timedelta(days=1))
    _place(db, ["MON"], T0)
    assert _scan(db, SUNDAY_DUE + timedelta(hours=5)) == Progress(1, 2)
    # When the clock jumps back 25 hours, then runs up to a second before Tuesday's close
    back = _scan(db, SUNDAY_DUE + timedelta(hours=5) - timedelta(hours=25))
    early = _scan(db, DUE - timedelta(seconds=1))
    # Then nothing more was marked or sent until the deadline really came
    assert (back, early) == (Progress(0, 0), Progress(0, 0))
    assert list(_overdue(db)) == ["SUN"]
    assert _scan(db, DUE) == Progress(1, 2)
    assert sum(_messages(db).values()) == 4


def test_two_concurrent_scans_mark_and_message_each_order_exactly_once(db: Database) -> None:
    # Given 60 late orders
    _place(db, [f"C{i:02d}" for i in range(60)], T0)
    barrier, results = threading.Barrier(2), []

    def scan() -> None:
        barrier.wait(10)
        results.append(_scan(db, DUE, batch=5))

    # When two scanners run at the same moment, five orders per transaction
    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then between them every order was marked once and messaged once per channel
    assert len(results) == 2
    assert sum(r.taken for r in results) == 60
    assert len(_overdue(db)) == 60
    assert sum(_messages(db).values()) == 120
    with db.sessions() as session:
        keys = session.scalars(select(Notification.key)).all()
    assert len(set(keys)) == 120


def test_the_scan_query_reads_the_partial_deadline_index(db: Database) -> None:
    # Given the scan's query, compiled for this database
    query = overdue_query(DUE, 100)
    with db.engine.connect() as conn:
        compiled = query.compile(dialect=conn.dialect)
        if conn.dialect.name == "postgresql":
            # Tiny tables are read sequentially; forbidding that shows whether the index fits.
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = conn.exec_driver_sql("EXPLAIN " + compiled.string, compiled.params).all()
        else:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string,
                                        tuple(compiled.params.values())).all()  # fmt: skip
    # Then the plan uses ix_orders_open_deadline
    text = "\n".join(str(row[-1]) for row in plan)
    assert "ix_orders_open_deadline" in text, text
