"""`orderflow backorders plan` and the restock decisions in `orderflow order show`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from models.db import migrate
from models.db.commerce import Inventory, Restock
from models.db.engine import Database, connect
from models.db.uow import UnitOfWork
from tasks.intake.ingest import ingest_batch
from tests import factories as f
from workers.cli.app import app

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
runner = CliRunner()


def _feed(db: Database, *envelopes: dict[str, Any]) -> None:
    with UnitOfWork(db, lambda: T0) as uow:
        outcomes = ingest_batch(uow, [f.body(e) for e in envelopes], f.policy())
        uow.commit()
    assert {o.result for o in outcomes} == {"applied"}


@pytest.fixture
def waiting(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """Backorders K1 (3 drills, older) and K2 (1 drill), each split off a kept leaflet."""
    monkeypatch.setenv("ORDERFLOW_DATABASE_URL", db_url)
    migrate.upgrade(db_url)
    db = connect(db_url)
    _feed(db, f.manufacturer(), f.envelope("inventory.set", sku="PAD", quantity=10))
    for number, drills, placed in (
        ("K1", 3, "2026-03-01T09:00:00Z"),
        ("K2", 1, "2026-03-02T09:00:00Z"),
    ):
        lines = [
            {"sku": "PAD", "quantity": 1, "unit_price": 100, "is_insert": False},
            {"sku": "DRILL", "quantity": drills, "unit_price": 100, "is_insert": False},
        ]
        _feed(db, f.order(number, lines=lines, placed_at=placed))
        _feed(db, f.envelope("order.split_requested", number=number))
    yield db
    db.dispose()


def test_plan_is_a_dry_run_of_both_policies(waiting: Database) -> None:
    skipping = runner.invoke(app, ["backorders", "plan", "DRILL", "2", "--json"])
    assert skipping.exit_code == 0, skipping.output
    assert json.loads(skipping.output) == {
        "sku": "DRILL", "received": 2, "policy": "skip_blocked", "released": 1,
        "available_after": 1,
        "decisions": [
            {"number": "K1-backorder", "outcome": "skipped",
             "reason": "short: DRILL needs 3, 2 available", "lines": {"DRILL": 3}},
            {"number": "K2-backorder", "outcome": "released",
             "reason": "every line can be filled", "lines": {"DRILL": 1}},
        ],
    }  # fmt: skip
    strict = runner.invoke(app, ["backorders", "plan", "DRILL", "2", "--policy", "strict"])
    assert strict.exit_code == 0, strict.output
    assert "waits behind K1-backorder" in strict.output
    assert "0 released; 2 DRILL left" in strict.output
    # Nothing was received, reserved or recorded
    with waiting.sessions() as session:
        assert session.get(Inventory, "DRILL") is None
        assert session.scalar(select(func.count()).select_from(Restock)) == 0


def test_order_show_lists_each_restock_decision(waiting: Database) -> None:
    _feed(waiting, f.envelope("inventory.received", sku="DRILL", quantity=2))
    shown = runner.invoke(app, ["order", "show", "K1-backorder", "--json"])
    assert shown.exit_code == 0, shown.output
    decisions = json.loads(shown.output)["restock_decisions"]
    assert [(d["sku"], d["received"], d["outcome"], d["reason"]) for d in decisions] == [
        ("DRILL", 2, "skipped", "short: DRILL needs 3, 2 available"),
    ]
    text = runner.invoke(app, ["order", "show", "K2-backorder"])
    assert text.exit_code == 0
    assert "restock decisions" in text.output
    assert "released" in text.output


def test_status_shows_recent_restocks(
    waiting: Database, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERFLOW_REDIS_URL", redis_url)
    _feed(waiting, f.envelope("inventory.received", sku="DRILL", quantity=2))
    shown = runner.invoke(app, ["status", "--json"])
    # No scheduler runs here, so its jobs are stale and the staged jobs wait: a person is needed
    assert shown.exit_code == 1, shown.output
    attention = [a["reason"] for a in json.loads(shown.output)["attention"]]
    assert attention == ["outbox_stuck", "scheduler_stale"]
    recent = json.loads(shown.output)["restocks"]["recent"]
    assert [(r["sku"], r["received"], r["considered"], r["released"], r["skipped"],
             r["available_after"]) for r in recent] == [("DRILL", 2, 2, 1, 1, 1)]  # fmt: skip
    text = runner.invoke(app, ["status"])
    assert "Recent restocks" in text.output
