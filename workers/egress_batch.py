"""The `egress.publish_batch` job: append a batch of events to the egress stream, each at most
once (the per-event markers of `workers.egress`), so a re-run after a crash skips what is in."""

from __future__ import annotations

from typing import Any

import redis

from models.db.uow import UowFactory
from tasks.outbox.egress_batch import PUBLISH_BATCH_JOB
from tasks.outbox.jobs import external_job
from workers.egress import append_once


def register(client: redis.Redis, max_len: int) -> None:
    """Register the batch publish job with this process's Redis connection."""

    @external_job(PUBLISH_BATCH_JOB)
    def publish_batch(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        del new_uow  # the outbox row is the whole record; nothing else to write
        for event in payload["events"]:
            append_once(client, event, max_len)
