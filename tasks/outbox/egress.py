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
    return emit_many(uow, event_type, [(key, data)]) == 1


def emit_many(uow: UnitOfWork, event_type: str, events: list[tuple[str, dict[str, Any]]]) -> int:
    """Stage one event per (key, data) whose key is new, in one statement; how many were new."""
    at = uow.clock().isoformat()
    jobs = [
        (f"egress:{key}", {"event": {"id": event_id(key), "type": event_type, "version": 1,
                                     "occurred_at": at, "data": data}})
        for key, data in events
    ]  # fmt: skip
    return uow.stage_many(PUBLISH_JOB, jobs)
