"""Takeover only from dead consumers: a live one slow to apply keeps its entries; a dead one's
(no heartbeat) are taken over, and the line says whose and why."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import select

from models.db.commerce import Order, Payment
from tests import factories as f
from tests.integration.ingress_bed import CLAIM_IDLE_S, Faults, count, enqueue, open_bed
from tests.services import RedisServer
from tests.support import wait_until
from workers.queue import streams
from workers.queue.ingress import IngressConsumer
from workers.runtime import Runtime

pytestmark = pytest.mark.integration
GHOST = "ghost:1:0"


@pytest.fixture
def rt(
    fresh_postgres_url: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    for runtime, _faults in open_bed(fresh_postgres_url, redis_server, monkeypatch):
        assert isinstance(_faults, Faults)
        yield runtime


def _client(rt: Runtime) -> redis.Redis:
    return redis.Redis.from_url(rt.redis_url)


def _seed(rt: Runtime) -> None:
    enqueue(rt, [f.body(f.manufacturer()), f.body(f.order("T1"))])
    seeder = IngressConsumer(rt, threading.Event(), index=9)
    entries = streams.read_new(_client(rt), seeder.consumer, 10, 100)
    assert [o.result for o in seeder.apply([(e, 1) for e in entries])] == ["applied"] * 2


def _payments(rt: Runtime, n: int) -> None:
    enqueue(rt, [f.body(f.envelope("payment.recorded", number="T1", amount=1)) for _ in range(n)])


def _run(consumers: list[IngressConsumer]) -> None:
    for consumer in consumers:
        consumer.start()


def _stop(stop: threading.Event, consumers: list[IngressConsumer]) -> None:
    stop.set()
    for consumer in consumers:
        consumer.join(10)
    assert not any(consumer.is_alive() for consumer in consumers)


def test_a_live_consumer_slow_to_apply_keeps_its_entries(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # Given consumer A applying two payments while the test holds their order's row lock
    _seed(rt)
    blocker = rt.db.sessions()
    blocker.begin()
    blocker.execute(select(Order.id).where(Order.number == "T1").with_for_update()).all()
    stop = threading.Event()
    slow, other = IngressConsumer(rt, stop, 1), IngressConsumer(rt, stop, 2)
    _payments(rt, 2)
    with caplog.at_level(logging.INFO, logger="orderflow.ingress"):
        _run([slow])
        assert wait_until(lambda: streams.owners(_client(rt)) == {slow.consumer: 2}, 10)
        # When consumer B runs for four times the claim idle time meanwhile
        _run([other])
        stop.wait(4 * CLAIM_IDLE_S)
        held = streams.owners(_client(rt))
        blocker.rollback()
        blocker.close()
        assert wait_until(lambda: count(rt, Payment) == 2, 10)
        _stop(stop, [slow, other])
    # Then A kept its entries and applied them once; B took nothing over
    assert held == {slow.consumer: 2}
    assert (slow.applied, other.applied) == (2, 0)
    assert not [r for r in caplog.records if r.getMessage().startswith("took over")]
    assert streams.owners(_client(rt)) == {}


def test_a_dead_consumers_entries_are_taken_over_with_a_line_naming_it(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # Given two entries read by a consumer that died (it never beat its heartbeat)
    _seed(rt)
    _payments(rt, 2)
    assert len(streams.read_new(_client(rt), GHOST, 10, 100)) == 2
    stop = threading.Event()
    live = IngressConsumer(rt, stop, 3)
    # When a live consumer runs
    with caplog.at_level(logging.INFO, logger="orderflow.ingress"):
        _run([live])
        assert wait_until(lambda: count(rt, Payment) == 2, 10)
        _stop(stop, [live])
    # Then it took them over once idle, saying from whom and why, and applied them once
    took = [r.getMessage() for r in caplog.records if r.getMessage().startswith("took over")]
    assert took == [
        f"took over 2 ingress entries from {GHOST}: its heartbeat stopped, idle for 500 ms or more"
    ]
    assert live.applied == 2
    assert streams.owners(_client(rt)) == {}
