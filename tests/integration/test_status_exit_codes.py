"""`orderflow status` as a health check (real Redis and PostgreSQL): exit code 0 on a quiet desk,
1 with each attention reason alone, 2 when Redis or the database cannot be read (and then no
URL or password is printed); the `--json` shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from models.db.engine import Database
from scheduler.jobs import default_jobs
from scheduler.loop import run_once
from tests import status_seed as seed
from tests.services import RedisServer, free_port
from tests.support import migrated
from workers.cli.app import app
from workers.cli.status_scheduler import scheduled_jobs
from workers.runtime import open_runtime
from workers.settings import Settings

pytestmark = pytest.mark.integration
runner = CliRunner()
M = timedelta(minutes=1)
SECTIONS = ["queues", "ingress", "confirmations", "captures", "holds", "quarantine", "outbox",
            "bulk_jobs", "restocks", "scheduler"]  # fmt: skip
PASSWORD = "pw-s3cret-9f1"


@dataclass
class Desk:
    """A quiet desk: migrated, empty, and a scheduler that has just run every job once."""

    db: Database
    redis: RedisServer
    settings: Settings
    now: datetime


@pytest.fixture
def quiet(
    fresh_postgres_url: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Desk]:
    redis_server.flushall()  # ours: the test bed started it
    monkeypatch.setenv("ORDERFLOW_DATABASE_URL", fresh_postgres_url)
    monkeypatch.setenv("ORDERFLOW_REDIS_URL", redis_server.url)
    db = migrated(fresh_postgres_url)
    settings = Settings(database_url=fresh_postgres_url, redis_url=redis_server.url,
                        _env_file=None)  # fmt: skip
    rt = open_runtime(settings)
    try:  # one real scheduler pass: every job runs and records its run
        run_once(rt, default_jobs(timedelta(seconds=1), timedelta(seconds=5)), {}, "host-a:1")
    finally:
        rt.close()
    yield Desk(db, redis_server, settings, datetime.now(UTC))
    db.dispose()


def _status(*args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["status", "--json", *args])
    return result.exit_code, json.loads(result.output)


def test_a_quiet_desk_exits_0_with_every_section(quiet: Desk) -> None:
    # When the status is asked for as JSON
    code, report = _status()
    # Then nothing needs a person, and every section is there
    assert code == 0, report["attention"]
    assert list(report) == ["at", "verdict", "exit_code", "attention", "unknown", *SECTIONS]
    assert (report["verdict"], report["exit_code"], report["attention"], report["unknown"]) == (
        "ok", 0, [], [])  # fmt: skip
    jobs = report["scheduler"]["jobs"]  # type: ignore[index]
    assert [(j["job"], j["owner"], j["stale"]) for j in jobs] == [
        (name, "host-a:1", False) for name in ("outbox_relay", "outbox_reconciler",
         "parking_expiry", "confirmation_scan", "desk_reminders", "tick_pruning", "hold_watch")
    ]  # fmt: skip


def _overdue(d: Desk) -> None:
    seed.orders(d.db, d.now, {}, ["A1"])
    seed.overdue(d.db, d.now, ["A1"])


def _stuck_capture(d: Desk) -> None:
    seed.orders(d.db, d.now, {"H1": timedelta(days=5)}, [])
    seed.operation(d.db, "H1", "capture", "unclear", d.now - 20 * M)


def _stale_relay(d: Desk) -> None:
    with d.redis.client() as client:
        seed.runs(client, scheduled_jobs(d.settings), {"outbox_relay": 10 * M}, d.now)


def _lagging_ingress(d: Desk) -> None:
    with d.redis.client() as client:
        seed.ingress(client, [d.now - 10 * M], delivered=0)


SEEDS: dict[str, Callable[[Desk], None]] = {
    "confirmation_overdue": _overdue,
    "quarantine_held": lambda d: seed.quarantined(d.db, d.now, {"x": "not_json"}),
    "payment_stuck": _stuck_capture,
    "hold_expiring": lambda d: seed.orders(d.db, d.now, {"H1": timedelta(hours=2)}, []),
    "outbox_stuck": lambda d: seed.outbox_jobs(d.db, d.now - 20 * M, 1),
    "scheduler_stale": _stale_relay,
    "ingress_lagging": _lagging_ingress,
    "queue_waiting": lambda d: seed.queued(d.redis.url, "default", [d.now - 10 * M]),
}


@pytest.mark.parametrize("reason", list(SEEDS))
def test_each_attention_reason_alone_exits_1(quiet: Desk, reason: str) -> None:
    # Given a quiet desk with one thing a person must see
    SEEDS[reason](quiet)
    # When the status is asked for
    code, report = _status()
    # Then it is the only reason given, and the exit code is 1
    assert [item["reason"] for item in report["attention"]] == [reason]  # type: ignore[attr-defined]
    assert (code, report["verdict"]) == (1, "attention")


def test_redis_down_exits_2_and_the_database_sections_still_show(
    quiet: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Redis address where nothing listens
    monkeypatch.setenv("ORDERFLOW_REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")
    # When the status is asked for
    result = runner.invoke(app, ["status", "--json"])
    # Then it cannot tell: exit code 2, the Redis sections unknown, the others read
    report = json.loads(result.output)
    assert (result.exit_code, report["verdict"]) == (2, "unknown")
    assert [u["source"] for u in report["unknown"]] == ["redis"]
    assert report["unknown"][0]["reason"].startswith("redis unreachable (ConnectionError: ")
    assert [i["reason"] for i in report["attention"]] == ["redis_unreachable"]
    assert (report["queues"], report["ingress"]) == (None, None)
    assert report["outbox"]["pending"] == 0
    # And the exclusive jobs are still judged from their claims in the database
    stale = {j["job"]: j["stale"] for j in report["scheduler"]["jobs"]}
    assert stale == {"outbox_relay": None, "outbox_reconciler": None, "parking_expiry": None,
                     "confirmation_scan": False, "desk_reminders": False, "tick_pruning": None,
                     "hold_watch": False}  # fmt: skip
    assert PASSWORD not in result.output


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://orderflow:{PASSWORD}@127.0.0.1:{{port}}/nowhere",
        f"postgresql+psycopg://orderflow:{PASSWORD}@127.0.0.1:port-x/nowhere",
        f"nosuchdb://orderflow:{PASSWORD}@127.0.0.1/nowhere",
    ],
    ids=["unreachable", "bad-port", "unknown-dialect"],
)
def test_a_bad_database_url_exits_2_without_printing_it(
    quiet: Desk, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # Given a database URL that cannot be used
    monkeypatch.setenv("ORDERFLOW_DATABASE_URL", url.format(port=free_port()))
    # When the status is asked for, as JSON and as text
    as_json = runner.invoke(app, ["status", "--json"])
    as_text = runner.invoke(app, ["status"])
    # Then it cannot tell (exit code 2), says why, and prints neither the URL nor its password
    report = json.loads(as_json.output)
    assert (as_json.exit_code, as_text.exit_code) == (2, 2)
    assert [u["source"] for u in report["unknown"]] == ["database"]
    assert report["confirmations"] is None
    assert "database_unreachable" in as_text.output
    for output in (as_json.output, as_text.output):
        assert PASSWORD not in output
        assert "orderflow:" not in output


def test_an_invalid_setting_exits_2_naming_it_without_its_value(
    quiet: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Redis URL that is not a URL (an unencoded '/' in the password)
    monkeypatch.setenv("ORDERFLOW_REDIS_URL", f"redis://:{PASSWORD}/x@127.0.0.1:6379/0")
    # When the status is asked for
    result = runner.invoke(app, ["status", "--json"])
    # Then it cannot tell, names the setting, and prints nothing of its value
    report = json.loads(result.output)
    assert (result.exit_code, report["verdict"]) == (2, "unknown")
    assert report["unknown"] == [
        {"source": "configuration", "reason": "invalid configuration: ORDERFLOW_REDIS_URL"}
    ]
    assert report["queues"] is None
    assert PASSWORD not in result.output
