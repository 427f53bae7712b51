"""The egress stream adapter (StreamAppender): append events at most once per event id.

A script sets a per-event marker and appends in one atomic step, so a job re-run after a
crash (the append done, the outbox row not yet marked) does not append the event again.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from workers.queue.streams import EGRESS_STREAM

EVENT_FIELD = "event"
SENT_MARKER_TTL_S = 7 * 24 * 3600
_APPEND_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[1])
end
return false
"""


def sent_marker(event_id: str) -> str:
    """The key that records that an event was appended."""
    return f"{EGRESS_STREAM}:sent:{event_id}"


def append_once(client: redis.Redis, event: dict[str, Any], max_len: int) -> bool:
    """Append `event` unless an event with its id was appended before; True when appended."""
    body = json.dumps(event, separators=(",", ":"), sort_keys=True)
    keys = [EGRESS_STREAM, sent_marker(str(event["id"]))]
    return bool(client.eval(_APPEND_ONCE, 2, *keys, body, SENT_MARKER_TTL_S, max_len))


class RedisStreamAppender:
    """StreamAppender on our Redis: the stream is trimmed to about `max_len` newest events."""

    def __init__(self, client: redis.Redis, max_len: int) -> None:
        self._client = client
        self._max_len = max_len

    def append_once(self, event: dict[str, Any]) -> bool:
        """Append unless an event with its id was appended before; True when appended."""
        return append_once(self._client, event, self._max_len)
