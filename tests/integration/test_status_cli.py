"""`orderflow status` and `orderflow order show` on real databases: overdue and soon-due
confirmations per manufacturer, and a breach kept on record after a late confirmation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from models.db import migrate
from models.db.commerce import Order
from models.db.engine import Database, connect
from models.db.uow import UnitOfWork
from tasks.deadlines.scan import mark_overdue
from tests import factories as f
from tests.support import feed
from workers.cli.app import app

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0)
runner = CliRunner()


def _due(db: Database, number: str, deadline: datetime) -> None:
    with db.sessions() as session, session.begin():
        session.execute(update(Order).where(Order.number == number)
                        .values(confirmation_deadline=deadline))  # fmt: skip


@pytest.fixture
def desk(db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """ACME: one open breach, one breach confirmed late, one due in 3 h, one in 30 h; a second
    manufacturer with one order due in 1 h."""
    monkeypatch.setenv("ORDERFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("ORDERFLOW_REDIS_URL", redis_url)
    migrate.upgrade(db_url)
    db = connect(db_url)
    other = f.manufacturer(id="oem-b", name="B Parts", notify_webhook_url=None)
    orders = [f.order(n) for n in ("A1", "A2", "A3", "A5")]
    orders.append(f.order("B1", manufacturer_id="oem-b"))
    feed(db, [f.body(e) for e in (f.manufacturer(), other, *orders)], f.policy(), NOW)
    for number, hours in (("A1", -2), ("A5", -1), ("A2", 3), ("A3", 30), ("B1", 1)):
        _due(db, number, NOW + timedelta(hours=hours))
    with UnitOfWork(db, lambda: NOW) as uow:
        assert mark_overdue(uow, NOW, 10).taken == 2
        uow.commit()
    late = f.envelope("order.confirmed", number="A5", at=NOW.isoformat())
    feed(db, [f.body(late)], f.policy(), NOW)
    yield db
    db.dispose()


def _order(number: str, state: str, hours: int, overdue: bool = False) -> dict[str, object]:
    return {"manufacturer_id": "oem-b" if number.startswith("B") else "oem-acme",
            "number": number, "state": state,
            "deadline": (NOW + timedelta(hours=hours)).isoformat(),
            "overdue_at": NOW.isoformat() if overdue else None}  # fmt: skip


def test_status_lists_open_breaches_and_soon_due_orders_per_manufacturer(desk: Database) -> None:
    # When the desk asks for the status as JSON
    result = runner.invoke(app, ["status", "--json"])
    # Then each manufacturer shows its counts and orders, earliest deadline first (and the open
    # breach needs a person: exit code 1)
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["confirmations"] == {
        "horizon_hours": 24.0,
        "manufacturers": [
            {"manufacturer_id": "oem-acme", "name": "ACME Tools GmbH", "overdue": 1,
             "due_soon": 1, "orders": [_order("A1", "overdue", -2, overdue=True),
                                       _order("A2", "due_soon", 3)]},
            {"manufacturer_id": "oem-b", "name": "B Parts", "overdue": 0, "due_soon": 1,
             "orders": [_order("B1", "due_soon", 1)]},
        ],
    }  # fmt: skip
    # And a longer horizon takes in the order due in 30 hours
    wider = json.loads(runner.invoke(app, ["status", "--json", "--soon-hours", "48"]).output)
    assert [m["due_soon"] for m in wider["confirmations"]["manufacturers"]] == [2, 1]


def test_status_prints_tables(desk: Database) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1, result.output
    assert "confirmation_overdue (1): 1 orders overdue and unconfirmed" in result.output
    # (rows of the five-column order table: rich may wrap a cell onto a second line)
    cells = [line.split("│")[1:-1] for line in result.output.splitlines()]
    rows = [[c.strip() for c in row] for row in cells if len(row) == 5 and row[1].strip()]
    assert [(row[1], row[3]) for row in rows if row[0] != "manufacturer"] == [
        ("A1", "overdue"),
        ("A2", "due soon"),
        ("B1", "due soon"),
    ]
    assert "ACME Tools GmbH" in result.output


def test_order_show_keeps_the_breach_after_a_late_confirmation(desk: Database) -> None:
    shown = json.loads(runner.invoke(app, ["order", "show", "A5", "--json"]).output)
    assert (shown["confirmation_status"], shown["deadline_breached"],
            shown["deadline_breached_at"]) == ("confirmed", True, NOW.isoformat())  # fmt: skip
    kinds = [(n["kind"], n["channel"]) for n in shown["notifications"]]
    assert kinds == [("oem_confirmation_failure", "email"), ("oem_confirmation_failure", "webhook"),
                     ("order_confirmed", "email")]  # fmt: skip
    text = runner.invoke(app, ["order", "show", "A5"]).output
    assert f"breached: yes, found {NOW.isoformat()}" in text.replace("\n", "")
