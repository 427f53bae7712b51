"""Publishing committed outbox jobs: several in one pipelined round trip, each a dramatiq message
on its queue, and a batch that fails half-way leaves nothing behind for the next."""

from __future__ import annotations

from collections import Counter
from typing import Any

import dramatiq
import pytest
import redis.connection

from models.db.uow import StagedJob
from tests.services import RedisServer
from workers.queue import publish
from workers.queue.broker import NAMESPACE, build_broker
from workers.queue.publish import enqueue_staged
from workers.settings import Settings

pytestmark = pytest.mark.integration


def _queued(redis_server: RedisServer) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    """Each queue's ready messages as (actor, args), in the order they were enqueued."""
    found: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    with redis_server.client() as client:
        for queue in ("notifications", "payments", "default"):
            ids = client.lrange(f"{NAMESPACE}:{queue}", 0, -1)
            bodies = [client.hget(f"{NAMESPACE}:{queue}.msgs", i) for i in ids]
            messages = [dramatiq.Message.decode(body) for body in bodies if body is not None]
            found[queue] = [(m.actor_name, tuple(m.args)) for m in messages]
    return found


def _heartbeats(redis_server: RedisServer) -> list[str]:
    with redis_server.client() as client:
        members = client.zrange(f"{NAMESPACE}:__heartbeats__", 0, -1)
    return [m.decode() for m in members]


def test_staged_jobs_are_published_in_one_round_trip_each_on_its_queue(
    redis_server: RedisServer,
) -> None:
    # Given our own empty Redis and a broker that has sent nothing yet
    redis_server.flushall()
    broker = build_broker(redis_server.url, Settings(_env_file=None))
    staged = [StagedJob(10, "notification.send", "notifications"),
              StagedJob(11, "notification.send", "notifications"),
              StagedJob(12, "payment.capture", "payments"),
              StagedJob(13, "notification.send", "notifications")]  # fmt: skip
    try:
        # When a transaction's four jobs, then a lone one, then two more are published
        enqueue_staged(broker, staged)
        enqueue_staged(broker, [StagedJob(14, "order.apply", "default")])
        enqueue_staged(broker, [StagedJob(15, "payment.capture", "payments"),
                                StagedJob(16, "notification.send", "notifications")])  # fmt: skip
        queued = _queued(redis_server)
    finally:
        broker.close()
    # Then every job is one message on its queue, in order, naming its outbox row
    assert queued == {
        "notifications": [("run_job_notifications", (10,)), ("run_job_notifications", (11,)),
                          ("run_job_notifications", (13,)), ("run_job_notifications", (16,))],
        "payments": [("run_job_payments", (12,)), ("run_job_payments", (15,))],
        "default": [("run_job_default", (14,))],
    }  # fmt: skip
    # And Redis knows the publisher by the broker's own id only (no second, silent "worker")
    assert _heartbeats(redis_server) == [broker.broker_id]


def test_round_trips_do_not_grow_with_the_batch(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a broker that has published once (scripts loaded, Lua stack size known)
    redis_server.flushall()
    broker = build_broker(redis_server.url, Settings(_env_file=None))
    enqueue_staged(broker, [StagedJob(i, "notification.send", "notifications") for i in (1, 2)])
    sends = Counter[int]()
    real_send: Any = redis.connection.AbstractConnection.send_packed_command

    def counted(connection: Any, command: Any, check_health: bool = True) -> None:
        sends[len(sends)] = 1
        real_send(connection, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    try:
        # When two jobs, then 200 jobs are published
        enqueue_staged(broker, [StagedJob(i, "notification.send", "notifications")
                                for i in (3, 4)])  # fmt: skip
        for_two = len(sends)
        enqueue_staged(broker, [StagedJob(i, "notification.send", "notifications")
                                for i in range(5, 205)])  # fmt: skip
        for_200 = len(sends) - for_two
        queued = _queued(redis_server)
    finally:
        broker.close()
    # Then each took one round trip (no SCRIPT EXISTS first: our Redis ACL does not grant it)
    assert (for_two, for_200) == (1, 1)
    assert [args for _, args in queued["notifications"]] == [(i,) for i in range(1, 205)]


def test_a_redis_that_lost_its_scripts_still_gets_every_job_once(
    redis_server: RedisServer,
) -> None:
    # Given a broker that has published once, and a Redis that then forgot its scripts (as
    # after a restart)
    redis_server.flushall()
    broker = build_broker(redis_server.url, Settings(_env_file=None))
    enqueue_staged(broker, [StagedJob(i, "notification.send", "notifications") for i in (1, 2)])
    with redis_server.client() as client:
        client.script_flush()
    try:
        # When a batch of three is published
        enqueue_staged(broker, [StagedJob(i, "payment.capture", "payments") for i in (3, 4, 5)])
        queued = _queued(redis_server)
    finally:
        broker.close()
    # Then each of the three went once (the pipelined calls failed without effect, and went
    # again one by one, loading the script)
    assert queued["payments"] == [("run_job_payments", (i,)) for i in (3, 4, 5)]
    assert len(queued["notifications"]) == 2


def test_a_batch_that_fails_half_way_leaves_nothing_for_the_next(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a broker whose pipelined enqueue fails on a batch's second message
    redis_server.flushall()
    broker = build_broker(redis_server.url, Settings(_env_file=None))
    twin = publish._twin(broker)
    real_enqueue = twin.enqueue
    calls = Counter[str]()

    def flaky(message: dramatiq.Message[Any], **options: Any) -> dramatiq.Message[Any]:
        calls["enqueue"] += 1
        if calls["enqueue"] == 2:
            raise ConnectionError("lost while queueing")
        return real_enqueue(message, **options)

    monkeypatch.setattr(twin, "enqueue", flaky)
    try:
        # When a batch of three fails, and the next batch of two goes through
        with pytest.raises(ConnectionError):
            enqueue_staged(broker, [StagedJob(i, "notification.send", "notifications")
                                    for i in (1, 2, 3)])  # fmt: skip
        nothing = _queued(redis_server)
        enqueue_staged(broker, [StagedJob(i, "notification.send", "notifications")
                                for i in (4, 5)])  # fmt: skip
        queued = _queued(redis_server)
    finally:
        broker.close()
    # Then the failed batch published nothing (its jobs are found again from the database)
    assert nothing == {"notifications": [], "payments": [], "default": []}
    # And the next batch is exactly its own two messages, not the failed batch's first
    assert queued == {"notifications": [("run_job_notifications", (4,)),
                                        ("run_job_notifications", (5,))],
                      "payments": [], "default": []}  # fmt: skip
