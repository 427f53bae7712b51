"""The Redis streams we own: ingress (producers -> orderflow) and egress (orderflow -> anyone).

A producer in any language enqueues with one command:
    XADD orderflow:ingress * envelope '<envelope JSON>'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

INGRESS_STREAM = "orderflow:ingress"
INGRESS_GROUP = "orderflow"
EGRESS_STREAM = "orderflow:egress"
ENVELOPE_FIELD = b"envelope"


@dataclass(frozen=True)
class Entry:
    """One stream entry: its id, the envelope bytes (None when the field is missing)."""

    entry_id: bytes
    body: bytes | None
    fields: tuple[bytes, ...]


def entry_time(entry_id: bytes | str) -> datetime:
    """When a stream entry was added: its id starts with Redis' clock in milliseconds."""
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return datetime.fromtimestamp(int(raw.partition("-")[0]) / 1000, tz=UTC)


def ensure_group(client: redis.Redis) -> None:
    """Create the consumer group at the stream's start (so nothing enqueued early is skipped)."""
    try:
        client.xgroup_create(INGRESS_STREAM, INGRESS_GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def _entries(raw: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Entry]:
    return [
        Entry(entry_id, fields.get(ENVELOPE_FIELD), tuple(sorted(fields)))
        for entry_id, fields in raw
        if fields is not None  # an entry deleted while pending comes back without fields
    ]


def read_new(client: redis.Redis, consumer: str, count: int, block_ms: int) -> list[Entry]:
    """Entries never delivered to any consumer."""
    # redis-py types replies for RESP2 and RESP3 at once; we speak RESP2: [[stream, entries]].
    reply: Any = client.xreadgroup(
        INGRESS_GROUP, consumer, {INGRESS_STREAM: ">"}, count=count, block=block_ms
    )
    return _entries(reply[0][1]) if reply else []


def claim_stale(
    client: redis.Redis, consumer: str, idle_ms: int, count: int
) -> list[tuple[Entry, int]]:
    """Take over entries held longer than `idle_ms` (their consumer died), with delivery counts."""
    reply: Any = client.xautoclaim(
        INGRESS_STREAM, INGRESS_GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=count
    )
    entries = _entries(reply[1])
    claimed = []
    for entry in entries:
        pending = client.xpending_range(
            INGRESS_STREAM, INGRESS_GROUP, min=entry.entry_id, max=entry.entry_id, count=1
        )
        deliveries = int(pending[0]["times_delivered"]) if pending else 1
        claimed.append((entry, deliveries))
    return claimed


def finish(client: redis.Redis, entry_ids: list[bytes]) -> None:
    """Acknowledge and delete applied entries, so the stream holds only unfinished work."""
    if not entry_ids:
        return
    pipe = client.pipeline(transaction=True)
    pipe.xack(INGRESS_STREAM, INGRESS_GROUP, *entry_ids)
    pipe.xdel(INGRESS_STREAM, *entry_ids)
    pipe.execute()
