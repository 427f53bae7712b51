"""`orderflow backlog create|report`, `export paid-backlog` and the `bulk_jobs` status section,
against real databases and our Redis (chunks are run here, as a worker would)."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from models.db import migrate
from models.db.commerce import BacklogSku
from models.db.engine import Database, connect
from models.db.machinery import OutboxJob
from tasks.backlog.paid import CHUNK_JOB
from tests import factories as f
from tests.backlog_support import (
    BITS,
    DRILL,
    TOTAL,
    apply,
    confirmed,
    count,
    eligible,
    payment,
    placed,
    run_chunks,
)
from tests.support import wait_until
from workers.cli.app import app

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def env(db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """Two eligible orders, one on account, one unconfirmed."""
    monkeypatch.setenv("ORDERFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("ORDERFLOW_REDIS_URL", redis_url)
    migrate.upgrade(db_url)
    db = connect(db_url)
    outcomes = apply(db, f.manufacturer(), *eligible("C1"), *eligible("C2"),
                     placed("C3", method="on_account"), confirmed("C3"), payment("C3", TOTAL),
                     placed("C4"))  # fmt: skip
    assert {o.result for o in outcomes} == {"applied"}
    yield db
    db.dispose()


def _report(job_id: str) -> dict[str, object]:
    result = runner.invoke(app, ["backlog", "report", job_id, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.output)
    return report


def test_a_dry_run_reports_every_order_and_creates_nothing(env: Database) -> None:
    # When a dry run is asked for four orders and one unknown number
    result = runner.invoke(app, ["backlog", "create", "C1", "C2", "C3", "C4", "NOPE", "--dry-run"])
    # Then it ran here and says what would happen, naming why the others are skipped
    assert result.exit_code == 0, result.output
    assert "job 1 done: 5/5 orders; would create 2 (6 SKUs); already created 0; skipped 2" in (
        result.stdout
    )
    report = _report("1")
    assert report["results"] == [
        {"number": "C1", "outcome": "would_create", "reasons": [], "skus": 3},
        {"number": "C2", "outcome": "would_create", "reasons": [], "skus": 3},
        {"number": "C3", "outcome": "skipped", "reasons": ["not_card"], "skus": 0},
        {"number": "C4", "outcome": "skipped", "reasons": ["not_paid", "not_confirmed"], "skus": 0},
        {"number": "NOPE", "outcome": "unknown_order", "reasons": ["unknown_order"], "skus": 0},
    ]
    assert count(env, BacklogSku, BacklogSku.kind == "paid") == 0


def test_create_follows_the_job_until_the_workers_are_done(env: Database) -> None:
    # Given a "worker" that runs the chunks once they are queued
    def work() -> None:
        assert wait_until(lambda: count(env, OutboxJob, OutboxJob.job == CHUNK_JOB.name) == 1, 30)
        run_chunks(env)

    worker = threading.Thread(target=work)
    worker.start()
    # When every eligible order is asked for
    result = runner.invoke(app, ["backlog", "create", "--all-eligible", "--timeout", "60"])
    worker.join(60)
    # Then the command followed the job to its end
    assert result.exit_code == 0, result.output
    assert "job 1 done: 2/2 orders; created 2 (6 SKUs)" in result.stdout
    assert count(env, BacklogSku, BacklogSku.kind == "paid") == 6
    # And a second request, left to the workers, finds everything already created
    again = runner.invoke(app, ["backlog", "create", "C1", "C2", "--no-wait"])
    assert (again.exit_code, again.stdout.strip()) == (0, "2")
    run_chunks(env)
    summary = _report("2")["job"]
    assert isinstance(summary, dict)
    assert (summary["status"], summary["already_created"], summary["created"]) == ("done", 2, 0)


def test_export_lists_paid_backlog_and_the_notes_that_consumed_it(env: Database) -> None:
    # Given paid backlog for C1 and C2, and a note that took 1 drill of C1
    assert runner.invoke(app, ["backlog", "create", "C1", "C2", "--no-wait"]).exit_code == 0
    run_chunks(env)
    note = f.envelope("delivery_note.requested", number="C1",
                      lines=[{"sku": DRILL, "quantity": 1}], reference="DN-1")  # fmt: skip
    assert apply(env, note)[0].result == "applied"
    # When exported as JSON lines and as CSV
    lines = runner.invoke(app, ["export", "paid-backlog", "--format", "jsonl"]).stdout
    table = runner.invoke(app, ["export", "paid-backlog", "--format", "csv"]).stdout
    # Then each paid SKU is listed with what consumed it
    rows = [json.loads(line) for line in lines.splitlines()]
    c1 = {r["sku"]: (r["quantity"], r["remaining"], r["consumed_by"]) for r in rows
          if r["number"] == "C1"}  # fmt: skip
    assert len(rows) == 6
    assert c1[DRILL] == (2, 1, [{"note": "DN-1", "quantity": 1}])
    assert c1[BITS] == (3, 3, [])
    parsed = list(csv.DictReader(io.StringIO(table)))
    assert list(parsed[0]) == ["number", "sku", "quantity", "remaining", "created_at",
                               "consumed_by"]  # fmt: skip
    assert {r["consumed_by"] for r in parsed} == {"", "DN-1:1"}


def test_status_shows_bulk_jobs_and_create_refuses_an_unclear_request(env: Database) -> None:
    # Given a dry run done
    assert runner.invoke(app, ["backlog", "create", "C1", "--dry-run"]).exit_code == 0
    # When the status is asked for
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    # Then the job is listed with its progress
    (job,) = status["bulk_jobs"]["jobs"]
    assert (job["job_id"], job["status"], job["dry_run"], job["orders_done"]) == (
        1,
        "done",
        True,
        1,
    )
    # No scheduler runs here, so its jobs are stale and the staged jobs wait: a person is needed
    assert [a["reason"] for a in status["attention"]] == ["outbox_stuck", "scheduler_stale"]
    assert runner.invoke(app, ["status"]).exit_code == 1
    # And create needs exactly one of NUMBERs and --all-eligible
    assert runner.invoke(app, ["backlog", "create"]).exit_code == 2
    assert runner.invoke(app, ["backlog", "create", "C1", "--all-eligible"]).exit_code == 2
    assert runner.invoke(app, ["backlog", "report", "99"]).exit_code == 1
