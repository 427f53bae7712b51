"""Outbound events for other systems, staged in the transaction that caused them.

Each event's id is derived from its key, so a consumer can deduplicate even if an event were
ever appended twice (the publisher already refuses a second append of the same id).
"""

from __future__ import annotations

import uuid
from typing import Any

from models.db.uow import JobKind, UnitOfWork, UowFactory
from tasks.outbox.jobs import JobSpec
from tasks.ports import StreamAppender

PUBLISH_JOB = JobKind("egress.publish")
# One job for many events: a chunk or a capture batch publishes its events together.
PUBLISH_BATCH_JOB = JobKind("egress.publish_batch")
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
    jobs = [(f"egress:{key}", {"event": _event(key, event_type, at, data)}) for key, data in events]
    return uow.stage_many(PUBLISH_JOB, jobs)


def emit_batch(
    uow: UnitOfWork, batch_key: str, event_type: str, events: list[tuple[str, dict[str, Any]]]
) -> bool:
    """Stage one job appending an event per (key, data); the batch is unique by `batch_key`,
    each event's id derived from its own key (as `emit` derives it). True when new."""
    if not events:
        return False
    at = uow.clock().isoformat()
    body = [_event(key, event_type, at, data) for key, data in events]
    return uow.stage(PUBLISH_BATCH_JOB, f"egress-batch:{batch_key}", {"events": body})


def _event(key: str, event_type: str, at: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id(key), "type": event_type, "version": 1, "occurred_at": at, "data": data}


def egress_jobs(appender: StreamAppender) -> list[JobSpec]:
    """The publish jobs: one event, or a batch (each event at most once, so a re-run after a
    crash skips what is in). The outbox row is the whole record: nothing else is written."""

    def publish(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        del new_uow
        appender.append_once(payload["event"])

    def publish_batch(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        del new_uow
        for event in payload["events"]:
            appender.append_once(event)

    return [
        JobSpec(PUBLISH_JOB, external=publish),
        JobSpec(PUBLISH_BATCH_JOB, external=publish_batch),
    ]
