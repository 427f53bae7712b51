"""Publishing committed outbox jobs to their dramatiq queues."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, cast

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from models.db.uow import StagedJob
from workers.queue.actors import actor_name


def enqueue_staged(broker: RedisBroker, staged: Sequence[StagedJob]) -> None:
    """Send committed outbox jobs to their queues, one dramatiq message each: a lone job in one
    script call, several in one pipelined round trip (a batch of orders stages hundreds).

    A job that fails to go is found again from the database (the outbox relay)."""
    messages = [_message(item) for item in staged]
    if len(messages) == 1:
        broker.enqueue(messages[0])
        return
    for message, result in zip(messages, _enqueue_piped(broker, messages), strict=True):
        if isinstance(result, NoScriptError):
            # Redis lost its script cache (a restart): the plain call loads the script.
            broker.enqueue(message)
        elif isinstance(result, Exception):
            raise result


def _message(item: StagedJob) -> dramatiq.Message[None]:
    return dramatiq.Message(
        queue_name=item.queue,
        actor_name=actor_name(item.queue),
        args=(item.outbox_id,),
        kwargs={},
        options={},
    )


def _enqueue_piped(broker: RedisBroker, messages: list[dramatiq.Message[None]]) -> list[Any]:
    """Each message's reply (or error) from one pipelined round trip."""
    twin = _twin(broker)
    pipe = cast(Pipeline, twin.client)
    try:
        for message in messages:
            twin.enqueue(message)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies
    finally:
        pipe.reset()  # a batch that failed half-way leaves nothing queued for the next


_twins = threading.local()


def _twin(broker: RedisBroker) -> RedisBroker:
    """This thread's twin of `broker`, whose script calls wait in a Redis pipeline: dramatiq's
    own enqueue (message ids, encoding, the arguments of its Lua script) without a round trip
    per message.

    To Redis the twin is `broker`: the same id (no stray heartbeat entry) and no middleware
    (none of ours acts on enqueue). Its script call is a bare EVALSHA: redis-py would first
    ask SCRIPT EXISTS, a round trip more and a command our Redis ACL does not grant. A pipeline
    cannot learn the Lua stack size from a reply, so `broker` learns it first (dramatiq keeps
    it per class)."""
    twins: dict[int, RedisBroker] = _twins.__dict__.setdefault("by_broker", {})
    twin = twins.get(id(broker))
    if twin is None or twin.broker_id != broker.broker_id:
        broker._max_unpack_size()  # type: ignore[no-untyped-call]  # one call, once per process
        pipe = broker.client.pipeline(transaction=False)
        twin = RedisBroker(  # type: ignore[no-untyped-call]  # dramatiq leaves it unannotated
            client=pipe,
            namespace=broker.namespace,
            middleware=[],
            maintenance_chance=broker.maintenance_chance,
            heartbeat_timeout=broker.heartbeat_timeout,
            dead_message_ttl=broker.dead_message_ttl,
        )
        twin.broker_id = broker.broker_id
        sha = broker.scripts["dispatch"].sha

        def dispatch(args: list[Any], keys: list[str]) -> Any:
            return pipe.evalsha(sha, len(keys), *keys, *args)

        twin.scripts = {**twin.scripts, "dispatch": dispatch}
        twins[id(broker)] = twin
    return twin
