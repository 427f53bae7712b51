"""Outbound events staged many at a time: one outbox job carries a batch of events, each with
its own id, so a bulk transaction stages (and the broker carries) one job instead of thousands.

Consumers see the same one-entry-per-event stream; the publisher appends each event at most once
(per-event markers), however often the batch job runs.
"""

from __future__ import annotations

from typing import Any

from models.db.uow import UnitOfWork
from tasks.outbox.egress import event_id

PUBLISH_BATCH_JOB = "egress.publish_batch"


def emit_batch(
    uow: UnitOfWork, batch_key: str, event_type: str, events: list[tuple[str, dict[str, Any]]]
) -> bool:
    """Stage one job appending an event per (key, data); the batch is unique by `batch_key`, each
    event's id derived from its own key (as `egress.emit` derives it). True when new."""
    if not events:
        return False
    at = uow.clock().isoformat()
    body = [{"id": event_id(key), "type": event_type, "version": 1, "occurred_at": at,
             "data": data} for key, data in events]  # fmt: skip
    return uow.stage(PUBLISH_BATCH_JOB, f"egress-batch:{batch_key}", {"events": body})
