"""The CLI's read and repair commands against real databases and our Redis."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from typer.testing import CliRunner

from models.db import migrate
from models.db.commerce import Order
from models.db.engine import Database, connect
from models.db.uow import UnitOfWork
from tasks.intake import ingest
from tests import factories as f
from workers.cli.app import app
from workers.cli.orders import ORDER_COLUMNS
from workers.queue.streams import INGRESS_STREAM

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def env(db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("ORDERFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("ORDERFLOW_REDIS_URL", redis_url)
    migrate.upgrade(db_url)
    db = connect(db_url)
    with UnitOfWork(db, lambda: T0) as uow:
        bodies = [f.body(f.manufacturer()), f.body(f.order("CLI-1")), f.body(f.order("CLI-2"))]
        bodies += [b"garbage", f.body(f.envelope("order.shipped", signed=False))]
        ingest.ingest_batch(uow, bodies, f.policy())
        uow.commit()
    yield db
    db.dispose()


runner = CliRunner()


def test_order_show_prints_statuses_lines_and_timeline(env: Database) -> None:
    result = runner.invoke(app, ["order", "show", "CLI-1", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["number"], shown["total"], shown["currency"]) == ("CLI-1", 25800, "EUR")
    assert (shown["confirmation_status"], shown["payment_status"]) == ("new", "authorized")
    assert shown["confirmation_deadline"] == "2026-03-03T14:00:00+00:00"
    assert [line["sku"] for line in shown["lines"]] == ["DRILL-18V", "LEAFLET-DE"]
    assert [event["kind"] for event in shown["timeline"]] == ["order.placed"]
    text = runner.invoke(app, ["order", "show", "CLI-1"])
    assert text.exit_code == 0
    assert "Order CLI-1" in text.output
    assert "confirmation: new" in text.output


def test_order_show_of_an_unknown_order_fails_clearly(env: Database) -> None:
    result = runner.invoke(app, ["order", "show", "NOPE"])
    assert result.exit_code == 1
    assert "no order NOPE" in result.output


def test_export_orders_writes_the_spec_columns_in_csv_and_jsonl(env: Database) -> None:
    as_csv = runner.invoke(app, ["export", "orders", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert tuple(rows[0]) == ORDER_COLUMNS
    assert [(r["number"], r["total"], r["payment_status"]) for r in rows] == [
        ("CLI-1", "25800", "authorized"),
        ("CLI-2", "25800", "authorized"),
    ]
    as_jsonl = runner.invoke(app, ["export", "orders", "--format", "jsonl"])
    lines = [json.loads(line) for line in as_jsonl.output.splitlines()]
    assert [(x["number"], x["outstanding_balance"], x["archived"]) for x in lines] == [
        ("CLI-1", 0, False),
        ("CLI-2", 0, False),
    ]


def test_quarantine_list_show_replay_and_drop(env: Database, redis_url: str) -> None:
    # Given two quarantined messages
    listed = runner.invoke(app, ["quarantine", "list"])
    assert listed.exit_code == 0
    assert "not_json" in listed.output
    assert "signature_missing" in listed.output
    shown = json.loads(runner.invoke(app, ["quarantine", "show", "1"]).output)
    assert (shown["reason"], shown["body"], shown["status"]) == ("not_json", "garbage", "held")
    # When one is replayed and the other dropped
    client = redis.Redis.from_url(redis_url)
    client.delete(INGRESS_STREAM)
    assert runner.invoke(app, ["quarantine", "replay", "1"]).output.strip() == "replayed 1"
    assert runner.invoke(app, ["quarantine", "drop", "2"]).output.strip() == "dropped 1"
    # Then the replayed body is back on the stream exactly as received, and nothing is held
    entries: Any = client.xrange(INGRESS_STREAM)  # redis-py types RESP2 and RESP3 at once
    assert [fields[b"envelope"] for _, fields in entries] == [b"garbage"]
    assert runner.invoke(app, ["quarantine", "replay", "1", "2"]).output.strip() == "replayed 0"
    client.delete(INGRESS_STREAM)


def test_schema_prints_every_type() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    printed = json.dumps(json.loads(result.output))
    for type_ in ("order.placed", "order.shipped", "stripe.event", "paid_backlog.requested"):
        assert type_ in printed


def test_export_payments_and_customer_balances_per_currency(env: Database) -> None:
    # Given a payment and a refund on CLI-1, and a USD order for the same customer
    with UnitOfWork(env, lambda: T0) as uow:
        usd = f.order("CLI-USD", currency="USD")
        bodies = [f.body(usd)] + [
            f.body(f.envelope("payment.recorded", number="CLI-1", amount=a, reference=r))
            for a, r in ((25_800, "wire-1"), (-800, "goodwill"))
        ]
        ingest.ingest_batch(uow, bodies, f.policy())
        uow.commit()
    # When
    exported = runner.invoke(app, ["export", "payments", "--format", "jsonl"])
    shown = runner.invoke(app, ["customer", "show", "C-1001", "--json"])
    # Then
    rows = [json.loads(line) for line in exported.output.splitlines()]
    assert [
        (r["number"], r["amount"], r["currency"], r["source"], r["reference"]) for r in rows
    ] == [
        ("CLI-1", 25_800, "EUR", "manual", "wire-1"),
        ("CLI-1", -800, "EUR", "manual", "goodwill"),
    ]
    customer = json.loads(shown.output)
    # Nothing is invoiced yet, so the payment leaves a negative balance (SPEC 1.4).
    assert customer["balance"] == {"EUR": -25_000, "USD": 0}
    assert [o["number"] for o in customer["orders"]] == ["CLI-1", "CLI-2", "CLI-USD"]


def test_bulk_payments_apply_once_report_per_row_and_dry_run_keeps_nothing(
    env: Database, tmp_path: Path
) -> None:
    # Given a CSV with two good rows, one for an unknown order and one malformed
    source = tmp_path / "payments.csv"
    source.write_text(
        "number,amount,method,at,reference\n"
        "CLI-1,10000,offline,2026-03-05T10:00:00+01:00,bank-1\n"
        "CLI-2,25800,on_account,2026-03-05T10:00:00+01:00,bank-2\n"
        "NOPE-9,500,offline,2026-03-05T10:00:00+01:00,bank-3\n"
        "CLI-1,ten,offline,2026-03-05T10:00:00+01:00,bank-4\n"
    )
    # When run as a dry run, then for real twice
    dry = runner.invoke(app, ["payments", "record", str(source), "--dry-run"])
    paid_after_dry_run = [o.paid for o in _orders(env)]
    first = runner.invoke(app, ["payments", "record", str(source)])
    second = runner.invoke(app, ["payments", "record", str(source)])
    # Then the dry run kept nothing, the first run recorded two, the second none
    assert dry.exit_code == 1
    assert paid_after_dry_run == [0, 0]
    assert first.exit_code == 1
    assert "unknown_order" in first.output
    assert "bad row" in first.output
    assert [(o.number, o.paid, o.payment_status) for o in _orders(env)] == [
        ("CLI-1", 10_000, "partially_paid"),
        ("CLI-2", 25_800, "paid"),
    ]
    assert second.output.count("duplicate") == 2


def _orders(db: Database) -> list[Order]:
    with db.sessions() as session:
        return list(session.scalars(select(Order).order_by(Order.number)))


def test_export_notifications_and_order_show_list_each_notification_state(env: Database) -> None:
    # Given a change that notifies the customer, delivered twice, and one that asks not to
    with UnitOfWork(env, lambda: T0) as uow:
        moved = f.envelope("order.fulfillment_changed", number="CLI-1", status="processing")
        quiet = f.envelope("order.fulfillment_changed", number="CLI-2", status="processing",
                           notify_customer=False)  # fmt: skip
        ingest.ingest_batch(uow, [f.body(moved), f.body(moved), f.body(quiet)], f.policy())
        uow.commit()
    # When
    exported = runner.invoke(app, ["export", "notifications", "--format", "jsonl"])
    shown = json.loads(runner.invoke(app, ["order", "show", "CLI-1", "--json"]).output)
    # Then exactly one notification, waiting to be sent
    assert [json.loads(line) for line in exported.output.splitlines()] == [
        {"number": "CLI-1", "kind": "fulfillment_processing", "recipient": "ada@example.com",
         "status": "pending", "attempts": 0, "last_error": None},
    ]  # fmt: skip
    assert [(n["kind"], n["status"]) for n in shown["notifications"]] == [
        ("fulfillment_processing", "pending")
    ]
