"""Runs of `order.accepted` / `order.confirmed` in one ingress batch are applied set-based, with
exactly the effects the one-by-one path has; a run it cannot take goes one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select

from models.db.commerce import BacklogSku, Order
from models.db.engine import Database
from models.db.machinery import Notification, OutboxJob, ParkedMessage, TimelineEvent
from tests import factories as f
from tests import support

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
CONFIRMED_AT = "2026-03-04T11:00:00Z"


def feed(db: Database, *envelopes: dict[str, Any]) -> list[str]:
    outcomes = support.feed(db, [f.body(e) for e in envelopes], f.policy(), T0)
    return [o.result for o in outcomes]


def confirmed(number: str) -> dict[str, Any]:
    return f.envelope("order.confirmed", number=number, at=CONFIRMED_AT)


def accepted(number: str) -> dict[str, Any]:
    return f.envelope("order.accepted", number=number, at=CONFIRMED_AT)


def effects(db: Database) -> dict[str, Any]:
    """Everything a confirmation changes, without ids or envelope ids (they differ per run)."""
    with db.sessions() as session:
        columns = (Order.confirmation_status, Order.confirmed_at, Order.confirmation_remind_at)
        orders = session.execute(select(Order.number, *columns).order_by(Order.number)).all()
        timeline = session.execute(
            select(Order.number, TimelineEvent.kind, TimelineEvent.summary)
            .join(Order, Order.id == TimelineEvent.order_id)
            .order_by(Order.number, TimelineEvent.id)
        ).all()
        mails = session.execute(
            select(Notification.recipient, Notification.template).order_by(Notification.id)
        ).all()
        backlog = session.execute(
            select(Order.number, BacklogSku.sku, BacklogSku.kind, BacklogSku.quantity)
            .join(Order, Order.id == BacklogSku.order_id)
            .order_by(Order.number, BacklogSku.sku)
        ).all()
        jobs = session.scalars(select(OutboxJob.job).order_by(OutboxJob.id)).all()
    return {"orders": [tuple(r) for r in orders], "timeline": [tuple(r) for r in timeline],
            "mails": [tuple(r) for r in mails], "backlog": [tuple(r) for r in backlog],
            "jobs": list(jobs)}  # fmt: skip


def placed(db: Database, count: int, prefix: str = "B") -> list[str]:
    numbers = [f"{prefix}{i}" for i in range(count)]
    feed(db, f.manufacturer(), *(f.order(n) for n in numbers))
    return numbers


def _of(data: dict[str, Any], prefix: str) -> dict[str, list[Any]]:
    """The effects on orders numbered `prefix`N, with the prefix dropped."""
    return {
        kind: [(row[0][len(prefix) :], *row[1:]) for row in rows if row[0].startswith(prefix)]
        for kind, rows in data.items()
        if kind in ("orders", "timeline", "backlog")
    }


def test_a_run_has_the_effects_of_one_by_one(db: Database) -> None:
    # Given two sets of the same five orders, the first of each already accepted
    runs, alone = placed(db, 5, "R"), placed(db, 5, "S")
    feed(db, accepted("R0"))
    feed(db, accepted("S0"))
    # When one set is confirmed in one batch and the other one message a batch
    in_run = feed(db, *(confirmed(n) for n in runs))
    one_by_one = [result for n in alone for result in feed(db, confirmed(n))]
    # Then both say applied, and every effect is the same
    assert in_run == one_by_one == ["applied"] * 5
    data = effects(db)
    assert _of(data, "R") == _of(data, "S")
    assert _of(data, "R")["orders"][0] == (
        "0", "confirmed", datetime(2026, 3, 4, 11, 0, tzinfo=UTC), None,
    )  # fmt: skip
    assert len(_of(data, "R")["backlog"]) == 10
    assert len(data["mails"]) == 10
    assert data["jobs"].count("notification.send") == 10


def _statements(db: Database, *envelopes: dict[str, Any]) -> int:
    """How many statements applying `envelopes` as one batch took (all must apply)."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert feed(db, *envelopes) == ["applied"] * len(envelopes)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_a_run_is_a_fixed_number_of_statements(db: Database) -> None:
    # Given 50 placed orders
    numbers = placed(db, 50)
    small, large = numbers[:10], numbers[10:]
    # When 10 and then 40 of them are accepted, then confirmed, a batch each
    accepting = [_statements(db, *(accepted(n) for n in run)) for run in (small, large)]
    confirming = [_statements(db, *(confirmed(n) for n in run)) for run in (small, large)]
    # Then a batch of 40 takes as many statements as a batch of 10
    assert accepting[0] == accepting[1]
    assert confirming[0] == confirming[1]
    data = effects(db)
    assert [o[1] for o in data["orders"]] == ["confirmed"] * 50
    assert len(data["mails"]) == 50
    assert data["jobs"].count("notification.send") == 50
    assert len(data["backlog"]) == 100  # two lines an order
    assert [t[2] for t in data["timeline"] if t[0] == "B0"][1:] == [
        "confirmation new -> accepted",
        "confirmation accepted -> confirmed",
    ]


def test_a_run_with_a_missing_order_goes_one_by_one(db: Database) -> None:
    # Given two placed orders
    numbers = placed(db, 2)
    # When a run confirms them and one that has not arrived, and repeats a number
    results = feed(db, confirmed(numbers[0]), confirmed("LATE-1"), confirmed(numbers[1]))
    repeat = feed(db, confirmed(numbers[0]), confirmed(numbers[0]))
    # Then the known ones are confirmed once, the unknown one waits, and repeats change nothing
    assert results == ["applied", "parked", "applied"]
    assert repeat == ["applied", "applied"]
    data = effects(db)
    assert [o[1] for o in data["orders"]] == ["confirmed", "confirmed"]
    assert len(data["mails"]) == 2
    summaries = [t[2] for t in data["timeline"] if t[0] == numbers[0]]
    assert summaries[1:] == ["confirmation new -> confirmed", "confirmed reported; stays confirmed",
                             "confirmed reported; stays confirmed"]  # fmt: skip
    with db.sessions() as session:
        assert session.scalars(select(ParkedMessage.awaits)).all() == ["order:LATE-1"]
