"""`orderflow status` sections on seeded data (real Redis, SQLite and PostgreSQL): every section's
exact values at a fixed time, and the attention items they raise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.db.engine import Database
from tests import status_seed as seed
from tests.services import RedisServer
from tests.support import migrated
from workers.cli.status import StatusOptions, gather
from workers.cli.status_scheduler import scheduled_jobs
from workers.settings import Settings

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0)
M = timedelta(minutes=1)


def _at(delta: timedelta) -> str:
    return (NOW + delta).isoformat()


@pytest.fixture
def world(db_url: str, redis_server: RedisServer) -> Settings:
    """A desk with something in every section; see each test's expectations."""
    redis_server.flushall()  # ours: the test bed started it
    settings = Settings(database_url=db_url, redis_url=redis_server.url, scheduler_tick_s=1.0,
                        deadline_scan_s=5.0, _env_file=None)  # fmt: skip
    db: Database = migrated(db_url)
    seed.orders(db, NOW, {"H1": timedelta(hours=5), "H2": timedelta(hours=30),
                          "H3": timedelta(hours=-1)}, ["A1", "A2"])  # fmt: skip
    seed.overdue(db, NOW, ["A1"])
    seed.operation(db, "H1", "capture", "pending", NOW - 20 * M)
    seed.operation(db, "H2", "capture", "unclear", NOW - 40 * M)
    seed.operation(db, "H3", "cancel", "pending", NOW - M)
    seed.operation(db, "H2", "refund", "done", NOW - 60 * M)
    seed.capture_failed(db, "A2", "card_declined: x", NOW - 3 * M)
    seed.outbox_jobs(db, NOW - 30 * M, 2)
    seed.outbox_jobs(db, NOW - M, 1)
    seed.outbox_jobs(db, NOW - 120 * M, 1, status="failed")
    seed.quarantined(db, NOW - 5 * M, {"bad json 1": "not_json", "bad json 2": "not_json",
                                       "tampered": "signature_invalid",
                                       "dropped": "signature_missing"})  # fmt: skip
    seed.parked(db, NOW - 10 * M, NOW + 50 * M)
    seed.claimed(db, "hold_watch", NOW - timedelta(seconds=10))
    seed.queued(redis_server.url, "default", [NOW - 10 * M, NOW - 8 * M, NOW - 2 * M, NOW - M])
    seed.taken(redis_server.url, "default", 2, dead=1)
    seed.queued(redis_server.url, "payments", [NOW - timedelta(seconds=30)])
    seed.queued(redis_server.url, "notifications", [NOW - timedelta(seconds=20)], delay_ms=60_000)
    with redis_server.client() as client:
        seed.ingress(client, [NOW - 7 * M, NOW - M, NOW - timedelta(seconds=30)], delivered=1)
        second = {job.name: timedelta(seconds=1) for job in scheduled_jobs(settings)}
        ages = {**second, "outbox_reconciler": 2 * M}
        del ages["hold_watch"], ages["tick_pruning"]
        seed.runs(client, scheduled_jobs(settings), ages, NOW)
    db.dispose()
    return settings


def _report(settings: Settings) -> dict[str, Any]:
    return gather(settings, NOW, StatusOptions(jobs=scheduled_jobs(settings)))


def test_database_sections_show_exact_counts_ages_and_orders(world: Settings) -> None:
    # When the status is gathered at NOW
    report = _report(world)
    # Then the overdue order, the lapsing holds, the open operations, the outbox and the
    # quarantine are each shown with exact values
    assert report["confirmations"] == {"horizon_hours": 24.0, "manufacturers": [
        {"manufacturer_id": "oem-acme", "name": "ACME Tools GmbH", "overdue": 1, "due_soon": 0,
         "orders": [{"manufacturer_id": "oem-acme", "number": "A1", "state": "overdue",
                     "deadline": _at(-120 * M), "overdue_at": _at(0 * M)}]}]}  # fmt: skip
    assert report["holds"] == {"warning_hours": 24.0, "expiring": 2, "orders": [
        {"number": "H3", "capture_before": _at(-60 * M), "hours_left": -1.0,
         "fulfillment_status": "unfulfilled", "total": 25_800, "currency": "EUR"},
        {"number": "H1", "capture_before": _at(300 * M), "hours_left": 5.0,
         "fulfillment_status": "unfulfilled", "total": 25_800, "currency": "EUR"}]}  # fmt: skip
    assert report["captures"] == {"stuck_after_minutes": 15.0, "stuck": 2, "unsettled": [
        {"kind": "cancel", "status": "pending", "count": 1, "oldest_created_at": _at(-M)},
        {"kind": "capture", "status": "pending", "count": 1, "oldest_created_at": _at(-20 * M)},
        {"kind": "capture", "status": "unclear", "count": 1, "oldest_created_at": _at(-40 * M)},
    ], "oldest_stuck": [
        {"number": "H2", "kind": "capture", "status": "unclear", "attempts": 0,
         "created_at": _at(-40 * M), "age_s": 2400.0,
         "last_error": "timeout: no answer from Stripe"},
        {"number": "H1", "kind": "capture", "status": "pending", "attempts": 0,
         "created_at": _at(-20 * M), "age_s": 1200.0, "last_error": None}],
        "failed": 1,
        "failed_orders": [{"number": "A2", "since": _at(-3 * M), "reason": "card_declined: x"}],
    }  # fmt: skip
    assert report["outbox"] == {"pending": 3, "by_job": {"system.probe": 3},
                                "oldest_created_at": _at(-30 * M), "oldest_age_s": 1800.0,
                                "stuck_after_minutes": 15.0, "stuck": 2, "failed": 1}  # fmt: skip
    assert report["quarantine"] == {"held": 3, "by_reason": {"not_json": 2,
                                    "signature_invalid": 1}, "parked": 1,
                                    "parked_next_expiry": _at(50 * M)}  # fmt: skip
    assert report["bulk_jobs"] == {"jobs": []}
    assert report["restocks"] == {"recent": []}


def _queue(name: str, counts: tuple[int, int, int, int], age: float | None) -> dict[str, Any]:
    ready, in_flight, delayed, dead = counts
    oldest = None if age is None else _at(timedelta(seconds=-age))
    return {"queue": name, "ready": ready, "in_flight": in_flight, "delayed": delayed,
            "dead_lettered": dead, "oldest_enqueued_at": oldest, "oldest_age_s": age}  # fmt: skip


def test_redis_sections_show_queues_and_the_ingress_stream(world: Settings) -> None:
    # When the status is gathered at NOW
    report = _report(world)
    # Then each queue shows ready, taken, delayed and dead-lettered messages and the oldest
    # ready one's age (the two oldest were taken by a worker, one of them dead-lettered)
    assert report["queues"] == {"waiting_after_minutes": 5.0, "queues": [
        _queue("default", (2, 1, 0, 1), 120.0),
        _queue("payments", (1, 0, 0, 0), 30.0),
        _queue("notifications", (0, 0, 1, 0), None),
        _queue("bulk", (0, 0, 0, 0), None),
    ]}  # fmt: skip
    # And the ingress stream its unfinished entries, one of them at a consumer
    assert report["ingress"] == {
        "waiting_after_minutes": 5.0, "length": 3, "consumers": 1, "pending": 1,
        "undelivered": 2, "oldest_entry_at": _at(-7 * M), "oldest_age_s": 420.0,
        "oldest_pending_at": _at(-7 * M), "oldest_pending_age_s": 420.0,
    }  # fmt: skip


def _job(name: str, period: float, age: float | None, **extra: Any) -> dict[str, Any]:
    recorded = extra.pop("recorded", True)
    return {"job": name, "period_s": period, "exclusive": extra.pop("exclusive", False),
            "last_run_at": None if age is None else _at(timedelta(seconds=-age)),
            "age_s": age, "owner": "host-a:41" if recorded else None,
            "outcome": "sent=0" if recorded else None,
            "stale_after_s": max(30.0, 3 * period), **extra}  # fmt: skip


def test_scheduler_section_shows_each_jobs_last_run_and_the_late_ones(world: Settings) -> None:
    # When the status is gathered at NOW
    report = _report(world)
    # Then each job shows its last run: recorded by a scheduler, or (hold_watch) only claimed
    assert report["scheduler"] == {"jobs": [
        _job("outbox_relay", 1.0, 1.0, stale=False),
        _job("outbox_reconciler", 2.0, 120.0, stale=True),
        _job("parking_expiry", 5.0, 1.0, stale=False),
        _job("confirmation_scan", 5.0, 1.0, exclusive=True, stale=False),
        _job("desk_reminders", 5.0, 1.0, exclusive=True, stale=False),
        _job("tick_pruning", 60.0, None, recorded=False, stale=True),
        _job("hold_watch", 30.0, 10.0, exclusive=True, recorded=False, stale=False),
    ]}  # fmt: skip


def test_every_attention_reason_of_the_seeded_desk_and_exit_code_1(world: Settings) -> None:
    # When the status is gathered at NOW
    report = _report(world)
    # Then every rule that found something is listed, in a fixed order, and the verdict says
    # a person is needed (no queue waits five minutes, so no queue item)
    assert report["attention"] == [
        {"reason": "confirmation_overdue", "count": 1,
         "detail": "1 orders overdue and unconfirmed"},
        {"reason": "quarantine_held", "count": 3,
         "detail": "held: not_json 2, signature_invalid 1"},
        {"reason": "payment_stuck", "count": 2,
         "detail": "2 Stripe operations unsettled for over 15 min"},
        {"reason": "capture_failed", "count": 1, "detail": "1 failed: A2"},
        {"reason": "hold_expiring", "count": 2, "detail": "2 card holds lapse within 24 h"},
        {"reason": "outbox_stuck", "count": 2, "detail": "2 jobs pending for over 15 min"},
        {"reason": "scheduler_stale", "count": 2,
         "detail": "no recent run: outbox_reconciler, tick_pruning"},
        {"reason": "ingress_lagging", "count": 1,
         "detail": "oldest entry waiting 420 s; 3 entries unfinished"},
    ]  # fmt: skip
    assert (report["verdict"], report["exit_code"], report["unknown"]) == ("attention", 1, [])
