"""`orderflow status` sections read from Redis: dramatiq's queues and the ingress stream.

Read-only, a few pipelined commands each. Keys are dramatiq's (`<ns>:<queue>` list of ids,
`<ns>:<queue>.msgs` hash of messages, `.DQ` for delayed, `.XQ` for dead-lettered); a message's
enqueue time is its JSON `message_timestamp` (ms). Ingress entry ids carry their append time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from models.db.uow import QUEUES
from workers.cli.context import redis_connection
from workers.cli.status_options import StatusOptions, age_s, iso
from workers.queue.broker import count_queue
from workers.queue.streams import INGRESS_GROUP, INGRESS_STREAM, entry_time
from workers.settings import Settings

# How many of a queue's first message ids are read to find the oldest: requeued messages go to
# the back, so the head is only nearly the oldest.
OLDEST_SAMPLE = 100
TIMEOUT_S = 2.0


@contextmanager
def client_for(settings: Settings) -> Iterator[redis.Redis]:
    """A client with short timeouts (a health check must answer, not hang)."""
    options = {
        "socket_timeout": TIMEOUT_S,
        "socket_connect_timeout": TIMEOUT_S,
        "retry": Retry(NoBackoff(), 0),
    }
    with redis_connection(settings, **options) as client:
        yield client


def _ms_time(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _oldest_enqueued(client: redis.Redis, key: str, ids: list[bytes]) -> datetime | None:
    if not ids:
        return None
    bodies: list[bytes | None] = client.hmget(f"{key}.msgs", ids)  # type: ignore[assignment]
    stamps = []
    for body in bodies:
        try:
            stamps.append(int(json.loads(body or b"null")["message_timestamp"]))
        except (ValueError, TypeError, KeyError):
            continue  # acked meanwhile, or not a dramatiq message: not ours to judge
    return _ms_time(min(stamps)) if stamps else None


def queues(client: redis.Redis, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """Per queue: messages ready, taken by workers (unacked), delayed (retries waiting),
    dead-lettered, and the enqueue time of the oldest ready one."""
    pipe = client.pipeline(transaction=False)
    keys = []
    for queue in QUEUES:
        keys.append(count_queue(pipe, queue))
        pipe.lrange(keys[-1], 0, OLDEST_SAMPLE - 1)
    replies: list[Any] = pipe.execute()
    listed = []
    for index, (queue, key) in enumerate(zip(QUEUES, keys, strict=True)):
        ready, held, delayed, dead, head = replies[index * 5 : index * 5 + 5]
        oldest = _oldest_enqueued(client, key, list(head))
        listed.append(
            {
                "queue": queue,
                "ready": int(ready),
                "in_flight": max(0, held - ready),
                "delayed": int(delayed),
                "dead_lettered": int(dead),
                "oldest_enqueued_at": iso(oldest),
                "oldest_age_s": age_s(now, oldest),
            }
        )
    return {"waiting_after_minutes": options.waiting.total_seconds() / 60, "queues": listed}


def _group(client: redis.Redis) -> dict[str, Any] | None:
    groups: list[dict[str, Any]] = client.xinfo_groups(INGRESS_STREAM)
    name = INGRESS_GROUP.encode()
    return next((g for g in groups if g["name"] in (name, INGRESS_GROUP)), None)


def ingress(client: redis.Redis, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """The ingress stream: entries not finished (applied entries are deleted, so every entry left
    is pending at a consumer or not yet delivered), consumers, and the age of the oldest entry."""
    empty = {
        "length": 0,
        "consumers": 0,
        "pending": 0,
        "undelivered": 0,
        "oldest_entry_at": None,
        "oldest_age_s": None,
        "oldest_pending_at": None,
        "oldest_pending_age_s": None,
    }
    result: dict[str, Any] = {"waiting_after_minutes": options.waiting.total_seconds() / 60}
    try:
        info: dict[str, Any] = client.xinfo_stream(INGRESS_STREAM)
    except redis.ResponseError as error:
        if "no such key" not in str(error).lower():
            raise
        return {**result, **empty}  # no producer has written yet
    length = int(info["length"])
    first = info.get("first-entry")
    oldest = entry_time(first[0]) if first else None
    group = _group(client)
    pending, consumers, oldest_pending = 0, 0, None
    if group is not None:
        summary: dict[str, Any] = client.xpending(INGRESS_STREAM, INGRESS_GROUP)
        pending, consumers = int(summary["pending"]), int(group["consumers"])
        oldest_pending = entry_time(summary["min"]) if summary["min"] else None
    return {
        **result,
        "length": length,
        "consumers": consumers,
        "pending": pending,
        "undelivered": max(0, length - pending),
        "oldest_entry_at": iso(oldest),
        "oldest_age_s": age_s(now, oldest),
        "oldest_pending_at": iso(oldest_pending),
        "oldest_pending_age_s": age_s(now, oldest_pending),
    }
