"""The `notification.webhook` job: a manufacturer's failure message POSTed as signed JSON
through the WebhookPoster port.

Claim, POST and settle are the notification steps of tasks/notifications/sending.py, so a
message recorded `sent` is never posted again. The body carries a stable `id` derived from the
notification key: should a worker die between the receiver's 2xx and our record of it, the
message is posted again after STALE_SENDING with the same id, and the receiver drops the copy.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from models.db import notifications
from models.db.uow import UowFactory
from tasks.notifications.sending import deliver
from tasks.notifications.staging import WEBHOOK_JOB
from tasks.outbox.jobs import JobSpec
from tasks.ports import WebhookPoster

_NAMESPACE = uuid.UUID("0b5f3c2e-8f0a-4a43-a4b9-6f1d2c7e9a31")


def message_id(key: str) -> str:
    """The stable id of the message staged under `key` (same on every attempt)."""
    return str(uuid.uuid5(_NAMESPACE, key))


def body_of(claim: notifications.Claim) -> bytes:
    """The JSON body: the staged context plus the message id, compact with sorted keys."""
    document = {**claim.context, "id": message_id(claim.key)}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_job(poster: WebhookPoster) -> JobSpec:
    """The webhook job, posting through `poster`."""

    def send_webhook(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        def send(claim: notifications.Claim) -> str:
            ident = message_id(claim.key)
            poster.post(claim.recipient, body_of(claim), ident=ident)
            return ident

        deliver(new_uow, int(payload["notification_id"]), send)

    return JobSpec(WEBHOOK_JOB, external=send_webhook)
