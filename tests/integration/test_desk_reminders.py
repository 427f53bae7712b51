"""Desk reminders on SQLite and PostgreSQL: one email to the desk at the configured share of the
confirmation window, only while the order waits and its deadline is ahead."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models.db.engine import Database
from models.db.tables import Notification, Order, TimelineEvent
from models.db.uow import UnitOfWork
from models.domain.desk import DeskSettings
from tasks.deadlines.scan import Progress, mark_overdue, reminder_step, run_tick
from tasks.intake.ingest import ingest_batch
from tests import factories as f

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
DUE = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # 30 hours later: Tuesday's close
DESK = "desk@shop.example"


def _place(db: Database, numbers: list[str], share: str) -> None:
    """Place orders at T0 through the ingress, with the share the composition root passes."""
    bodies = [f.body(f.manufacturer())] + [
        f.body(f.order(n, placed_at=T0.isoformat())) for n in numbers
    ]
    with UnitOfWork(db, lambda: T0, options=DeskSettings(reminder_share=float(share))) as uow:
        outcomes = ingest_batch(uow, bodies, f.policy())
        uow.commit()
    assert {o.result for o in outcomes} == {"applied"}


def _remind(db: Database, at: datetime, desk: str = DESK) -> Progress:
    return run_tick(lambda: UnitOfWork(db, lambda: at), at, reminder_step(desk), 1000, 200)


def _reminders(db: Database) -> Counter[tuple[str, str]]:
    with db.sessions() as session:
        query = select(Order.number, Notification.recipient).join(
            Notification, Notification.order_id == Order.id
        )
        rows = session.execute(query.where(Notification.kind == "desk_confirmation_reminder"))
        return Counter((number, to) for number, to in rows)


def _remind_at(db: Database) -> dict[str, datetime | None]:
    with db.sessions() as session:
        rows = session.execute(select(Order.number, Order.confirmation_remind_at))
        return dict(rows.all())


def test_the_desk_is_reminded_once_at_the_configured_share_of_the_window(db: Database) -> None:
    # Given an order placed with ORDERFLOW_REMINDER_SHARE=0.5: reminded 15 of its 30 hours in
    _place(db, ["M0"], "0.5")
    halfway = T0 + timedelta(hours=15)
    assert _remind_at(db) == {"M0": halfway}
    # When the reminder scan runs a second before, at the time, and again later
    ticks = [_remind(db, at) for at in (halfway - timedelta(seconds=1), halfway,
                                        halfway + timedelta(hours=1))]  # fmt: skip
    # Then the desk got exactly one reminder, and the order no longer waits for one
    assert ticks == [Progress(0, 0), Progress(1, 1), Progress(0, 0)]
    assert _reminders(db) == Counter({("M0", DESK): 1})
    assert _remind_at(db) == {"M0": None}
    with db.sessions() as session:
        kinds = session.scalars(select(TimelineEvent.kind).order_by(TimelineEvent.id)).all()
    assert kinds == ["order.placed", "order.confirmation_reminder"]


def test_the_default_share_is_three_quarters(db: Database) -> None:
    # Given an order placed with the default share
    _place(db, ["M0"], "0.75")
    # Then its reminder falls 22.5 of its 30 hours in
    assert _remind_at(db) == {"M0": T0 + timedelta(hours=22, minutes=30)}


def test_confirmed_or_breached_orders_are_not_reminded(db: Database) -> None:
    # Given three orders: one confirmed early, one whose deadline passed before any scan ran,
    # and one the confirmation scan already marked overdue
    _place(db, ["CONF", "PAST", "MARKED"], "0.5")
    confirmed = f.envelope("order.confirmed", number="CONF", at=T0.isoformat())
    with UnitOfWork(db, lambda: T0) as uow:
        ingest_batch(uow, [f.body(confirmed)], f.policy())
        uow.commit()
    # When the reminder scan first runs only after the deadline (for MARKED, after the
    # confirmation scan, which clears the reminder as it marks)
    with UnitOfWork(db, lambda: DUE) as uow:
        marked = mark_overdue(uow, DUE, limit=1)
        uow.commit()
    late = _remind(db, DUE + timedelta(minutes=1))
    # Then the confirmed order's reminder was cleared at confirmation, and the late ones are
    # taken without an email
    assert marked.taken == 1
    assert late == Progress(1, 0)
    assert _reminders(db) == Counter()
    assert _remind_at(db) == {"CONF": None, "PAST": None, "MARKED": None}


def test_no_desk_address_means_no_reminder_email(db: Database) -> None:
    _place(db, ["M0"], "0.5")
    assert _remind(db, T0 + timedelta(hours=16), desk="") == Progress(1, 0)
    assert _reminders(db) == Counter()
