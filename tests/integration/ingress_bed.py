"""A runtime on our own Redis and a fresh PostgreSQL for ingress consumer tests, and a unit of
work whose commit fails on cue (an injected deadlock, a lost connection)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from models.db.uow import UnitOfWork
from tests import factories as f
from tests.services import RedisServer
from tests.support import migrated
from workers.queue import streams
from workers.runtime import Runtime, open_runtime
from workers.settings import Settings

CLAIM_IDLE_S = 0.5
MAX_DELIVERIES = 2


@dataclass
class Faults:
    """Which commits fail: `decide(uow)` returns the error to raise, or None to commit."""

    decide: Callable[[UnitOfWork], BaseException | None] = lambda _uow: None
    raised: list[str] = field(default_factory=list)


def database_error(orig: Exception) -> OperationalError:
    """A driver error as SQLAlchemy raises it."""
    return OperationalError("COMMIT", {}, orig)


def deadlock() -> OperationalError:
    """What PostgreSQL's deadlock detector makes a victim see."""
    return database_error(psycopg.errors.DeadlockDetected("deadlock detected"))


def open_bed(
    fresh_postgres_url: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Runtime, Faults]]:
    """A runtime whose units of work fail their commits as `Faults` says (a fixture's body)."""
    redis_server.flushall()  # ours: the test bed started it
    migrated(fresh_postgres_url).dispose()
    settings = Settings(database_url=fresh_postgres_url, redis_url=redis_server.url,
                        signing_keys=f.SIGNING_KEYS_SETTING, ingress_claim_idle_s=CLAIM_IDLE_S,
                        ingress_max_deliveries=MAX_DELIVERIES, _env_file=None)  # fmt: skip
    rt = open_runtime(settings)
    faults = Faults()
    real = rt.new_uow

    def new_uow() -> UnitOfWork:
        uow = real()
        commit = uow.commit

        def failing_commit() -> None:
            error = faults.decide(uow)
            if error is not None:
                faults.raised.append(type(error).__name__)
                raise error
            commit()

        monkeypatch.setattr(uow, "commit", failing_commit)
        return uow

    monkeypatch.setattr(rt, "new_uow", new_uow)
    yield rt, faults
    rt.close()


def enqueue(rt: Runtime, bodies: list[bytes]) -> None:
    """XADD each body as a producer would."""
    client = redis.Redis.from_url(rt.redis_url)
    streams.ensure_group(client)
    for body in bodies:
        client.xadd(streams.INGRESS_STREAM, {streams.ENVELOPE_FIELD: body})
    client.close()


def count(rt: Runtime, model: type) -> int:
    """Rows of a table."""
    with rt.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)
