"""The Python producer client: complete, sign and enqueue envelopes on the ingress stream."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from tasks.messages.signing import sign
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM
from workers.queue.wire import dumps


def envelope(
    type_: str,
    data: Mapping[str, Any],
    *,
    producer: str,
    version: int = 1,
    envelope_id: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """A new, unsigned envelope."""
    return complete(
        {"type": type_, "version": version, "data": dict(data)},
        producer,
        envelope_id=envelope_id,
        occurred_at=occurred_at,
    )


def complete(
    raw: Mapping[str, Any],
    producer: str,
    *,
    envelope_id: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """Fill in id, time, version and producer where the envelope has none."""
    filled = dict(raw)
    filled.setdefault("id", envelope_id or str(uuid.uuid4()))
    filled.setdefault("occurred_at", (occurred_at or datetime.now(UTC)).isoformat())
    filled.setdefault("version", 1)
    filled.setdefault("producer", producer)
    return filled


def signed(raw: Mapping[str, Any], keys: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """Signed with the first key (the one that signs); unchanged when no key is configured."""
    if not keys or "signature" in raw:
        return dict(raw)
    key_id, secret = keys[0]
    return sign(raw, key_id, secret)


def publish(client: redis.Redis, envelopes: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """XADD each envelope to the ingress stream (one round trip); returns the entry ids."""
    pipe = client.pipeline(transaction=False)
    for item in envelopes:
        pipe.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: dumps(item)})
    return [bytes(entry_id) for entry_id in pipe.execute()]
