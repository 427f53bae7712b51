"""Transient database trouble in an ingress batch: retried by the same consumer, bisected after a
second failure; only an envelope failing alone counts towards the delivery limit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy import select

from models.db.commerce import Order
from models.db.machinery import InboxEntry, QuarantinedMessage
from models.db.uow import UnitOfWork
from tests import factories as f
from tests.integration.ingress_bed import (
    CLAIM_IDLE_S,
    Faults,
    count,
    database_error,
    deadlock,
    enqueue,
    open_bed,
)
from tests.services import RedisServer
from workers.queue import streams
from workers.queue.ingress import IngressConsumer
from workers.runtime import Runtime

pytestmark = pytest.mark.integration
SECRET = "hunter2-not-for-logs"


@pytest.fixture
def bed(
    fresh_postgres_url: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Runtime, Faults]]:
    yield from open_bed(fresh_postgres_url, redis_server, monkeypatch)


def _retries(reason: str) -> float:
    return REGISTRY.get_sample_value("orderflow_ingress_retries_total", {"reason": reason}) or 0.0


def _read(rt: Runtime, consumer: IngressConsumer) -> list[tuple[streams.Entry, int]]:
    client = redis.Redis.from_url(rt.redis_url)
    entries = streams.read_new(client, consumer.consumer, 100, 100)
    client.close()
    return [(entry, 1) for entry in entries]


def _pending(rt: Runtime) -> int:
    client = redis.Redis.from_url(rt.redis_url)
    summary = client.xpending(streams.INGRESS_STREAM, streams.INGRESS_GROUP)
    client.close()
    return int(summary["pending"])


def _places(uow: UnitOfWork, number: str) -> bool:
    return uow.session.scalar(select(Order.id).where(Order.number == number)) is not None


def test_a_batch_that_deadlocks_is_retried_and_applied_whole(
    bed: tuple[Runtime, Faults], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a batch of six envelopes whose first commit is chosen as a deadlock victim
    rt, faults = bed
    enqueue(rt, [f.body(f.manufacturer())] + [f.body(f.order(f"D{i}")) for i in range(5)])
    consumer = IngressConsumer(rt, threading.Event())
    faults.decide = lambda _uow: deadlock() if not faults.raised else None
    before = _retries("deadlock")
    # When the consumer applies it
    with caplog.at_level(logging.WARNING, logger="orderflow.ingress"):
        outcomes = consumer.apply(_read(rt, consumer))
    # Then it was applied whole on the second attempt, by the same consumer, nothing quarantined
    assert faults.raised == ["OperationalError"]
    assert [o.result for o in outcomes] == ["applied"] * 6
    assert (count(rt, Order), count(rt, InboxEntry), count(rt, QuarantinedMessage)) == (5, 6, 0)
    assert _pending(rt) == 0  # acknowledged: never handed to Redis again, no delivery counted
    assert _retries("deadlock") - before == 1
    failed = [r for r in caplog.records if r.getMessage().startswith("ingress batch failed")]
    assert [r.getMessage() for r in failed] == [
        "ingress batch failed: deadlock (OperationalError/DeadlockDetected, SQLSTATE 40P01): "
        "deadlock detected"
    ]


def test_one_envelope_that_always_fails_is_split_off_and_alone_counts_towards_the_limit(
    bed: tuple[Runtime, Faults],
) -> None:
    # Given eight envelopes, one of which makes every commit it is in fail (transient-looking)
    rt, faults = bed
    enqueue(rt, [f.body(f.manufacturer())])
    consumer = IngressConsumer(rt, threading.Event())
    consumer.apply(_read(rt, consumer))
    numbers = [f"B{i}" for i in range(8)]
    enqueue(rt, [f.body(f.order(n)) for n in numbers])
    serialization = psycopg.errors.SerializationFailure("could not serialize access")
    faults.decide = lambda uow: database_error(serialization) if _places(uow, "B5") else None
    before = _retries("serialization")
    # When the consumer applies the batch
    outcomes = consumer.apply(_read(rt, consumer))
    # Then the other seven are applied (whole, retried, halves, retried, quarters, ... alone)
    assert [o.result for o in outcomes] == ["applied"] * 7
    assert count(rt, Order) == 7
    assert _retries("serialization") - before == 8
    assert _pending(rt) == 1  # only B5, delivered once so far
    # And only B5 is delivered again (taken back once idle), until the limit quarantines it
    for _ in range(2):
        time.sleep(CLAIM_IDLE_S + 0.1)
        consumer._claim()
    with rt.db.sessions() as session:
        held = session.execute(select(QuarantinedMessage.reason, QuarantinedMessage.body)).all()
    assert [(reason, b'"B5"' in body) for reason, body in held] == [("delivery_limit", True)]
    assert (count(rt, Order), _pending(rt)) == (7, 0)


def test_a_lost_connection_is_waited_out_and_the_log_line_names_it_without_secrets(
    bed: tuple[Runtime, Faults], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a batch whose first two commits lose the connection (the error quotes a URL)
    rt, faults = bed
    enqueue(rt, [f.body(f.manufacturer()), f.body(f.order("C1"))])
    consumer = IngressConsumer(rt, threading.Event())
    lost = psycopg.OperationalError(
        f"connection to postgresql://orderflow:{SECRET}@db:5432/x failed: password={SECRET}\nmore"
    )
    faults.decide = lambda _uow: database_error(lost) if len(faults.raised) < 2 else None
    before = _retries("connection")
    # When the consumer applies it
    with caplog.at_level(logging.WARNING, logger="orderflow.ingress"):
        outcomes = consumer.apply(_read(rt, consumer))
    # Then the whole batch is applied by the third attempt: never split, nothing quarantined
    assert [o.result for o in outcomes] == ["applied", "applied"]
    assert (count(rt, Order), count(rt, QuarantinedMessage), _pending(rt)) == (1, 0, 0)
    assert _retries("connection") - before == 2
    # And each failure was logged with its class, SQLSTATE and a short message, no password
    failed = [r for r in caplog.records if r.getMessage().startswith("ingress batch failed")]
    assert len(failed) == 2
    assert failed[0].getMessage() == (
        "ingress batch failed: connection (OperationalError/OperationalError, SQLSTATE -): "
        "connection to postgresql://orderflow:***@db:5432/x failed: password=***"
    )
    assert {r.__dict__["sqlstate"] for r in failed} == {None}
    assert SECRET not in caplog.text
