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


# Take over one consumer's idle entries and nobody else's: XAUTOCLAIM from each entry's own id
# claims exactly that entry (it is pending and idle, checked in the same atomic script); an
# entry gone from the stream is only acknowledged. Returns [id, fields, deliveries] each.
_CLAIM_FROM = """
local claimed = {}
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[4], '-', '+',
                          ARGV[5], ARGV[3])
for _, entry in ipairs(pending) do
  if #redis.call('XRANGE', KEYS[1], entry[1], entry[1]) == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], entry[1])
  else
    local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], entry[1], 'COUNT', 1)
    local got = reply[2][1]
    if got then table.insert(claimed, {got[1], got[2], entry[4] + 1}) end
  end
end
return claimed
"""


def owners(client: redis.Redis) -> dict[str, int]:
    """The consumers holding unacknowledged ingress entries, with how many each."""
    summary: Any = client.xpending(INGRESS_STREAM, INGRESS_GROUP)
    return {_text(c["name"]): int(c["pending"]) for c in summary.get("consumers") or []}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def claim_from(
    client: redis.Redis, consumer: str, owner: str, idle_ms: int, count: int
) -> list[tuple[Entry, int]]:
    """Take over up to `count` of `owner`'s entries idle for `idle_ms`, with delivery counts."""
    args = (INGRESS_GROUP, consumer, owner, idle_ms, count)
    reply: Any = client.eval(_CLAIM_FROM, 1, INGRESS_STREAM, *args)
    claimed: list[tuple[Entry, int]] = []
    for entry_id, flat, deliveries in reply:
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        claimed.extend((entry, int(deliveries)) for entry in _entries([(entry_id, fields)]))
    return claimed


def finish(client: redis.Redis, entry_ids: list[bytes]) -> None:
    """Acknowledge and delete applied entries, so the stream holds only unfinished work."""
    if not entry_ids:
        return
    pipe = client.pipeline(transaction=True)
    pipe.xack(INGRESS_STREAM, INGRESS_GROUP, *entry_ids)
    pipe.xdel(INGRESS_STREAM, *entry_ids)
    pipe.execute()
