"""The CLI's read and repair commands against real databases and our Redis."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from models.db import migrate
from models.db.engine import Database, connect
from models.db.uow import UnitOfWork
from tasks import ingest
from tests import factories as f
from workers.cli import app
from workers.commands.orders import ORDER_COLUMNS
from workers.streams import INGRESS_STREAM

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
