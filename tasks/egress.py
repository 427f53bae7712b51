"""Outbound events for other systems, staged in the transaction that caused them.

Each event's id is derived from its key, so a consumer can deduplicate even if an event were
ever appended twice (the publisher already refuses a second append of the same id).
"""

from __future__ import annotations

import uuid
from typing import Any

from models.db.uow import UnitOfWork

PUBLISH_JOB = "egress.publish"
_NAMESPACE = uuid.UUID("6f7c1a52-3c1e-4c55-9f0e-8d2f4a1b7e10")


def event_id(key: str) -> str:
    """The stable id of the event staged under `key`."""
    return str(uuid.uuid5(_NAMESPACE, key))


def emit(uow: UnitOfWork, event_type: str, key: str, data: dict[str, Any]) -> bool:
    """Stage one event (`fulfillment.submitted`, ...) unique by `key`; True when new."""
    event = {
        "id": event_id(key),
        "type": event_type,
        "version": 1,
        "occurred_at": uow.clock().isoformat(),
        "data": data,
    }
    return uow.stage(PUBLISH_JOB, f"egress:{key}", {"event": event})
