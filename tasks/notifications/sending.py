"""The `notification.send` job: claim a notification, build its email, send it through the
Mailer port, record the outcome.

Claim, send and settle are three steps with their own commits. A crash between the mail
server's acceptance and the settle leaves the row `sending`; after STALE_SENDING it is sent
again with the same Message-ID (at least once, never lost).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from models.db import notifications
from models.db.uow import UowFactory
from models.domain.errors import PermanentError, RetryableError
from tasks import log_context
from tasks.notifications.staging import SEND_JOB
from tasks.outbox.jobs import JobSpec
from tasks.ports import Mailer, Renderer

STALE_SENDING = timedelta(minutes=2)


def message_id(key: str, sender: str) -> str:
    """A Message-ID derived from the notification key: the same email always has the same id,
    so a receiving system can drop a rare re-send after a crash."""
    domain = sender.rpartition("@")[2] or "orderflow.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def build_email(renderer: Renderer, claim: notifications.Claim, sender: str) -> EmailMessage:
    """The email for a claimed notification, with its stable Message-ID."""
    rendered = renderer.render(claim.template, claim.context)
    email = EmailMessage()
    email["From"] = sender
    email["To"] = claim.recipient
    email["Subject"] = rendered.subject
    email["Message-ID"] = message_id(claim.key, sender)
    email.set_content(rendered.text)
    email.add_alternative(rendered.html, subtype="html")
    return email


def email_job(mailer: Mailer | None, renderer: Renderer, sender: str) -> JobSpec:
    """The send job, with the mailer (None: not configured, mail waits) and the templates."""

    def send_notification(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        def send(claim: notifications.Claim) -> str:
            if mailer is None:
                raise RetryableError("smtp_unconfigured", "ORDERFLOW_SMTP_URL is not set")
            email = build_email(renderer, claim, sender)
            mailer.send(email)
            return str(email["Message-ID"])

        deliver(new_uow, int(payload["notification_id"]), send)

    return JobSpec(SEND_JOB, external=send_notification)


def deliver(
    new_uow: UowFactory, notification_id: int, send: Callable[[notifications.Claim], str]
) -> None:
    """Claim the notification, `send` it (returning its message id), record the outcome: the
    steps every channel shares. Every error is recorded on the row and re-raised."""
    with new_uow() as uow:
        claim = notifications.claim(uow.session, notification_id, uow.clock(), STALE_SENDING)
        status = None if claim else notifications.status_of(uow.session, notification_id)
        uow.commit()
    if claim is None:
        if status == "sending":
            raise RetryableError("in_progress", "another worker is sending it")
        return  # sent, failed or gone: nothing to do
    number = claim.context.get("order_number")
    log_context.add(order=number if isinstance(number, str) else None)
    try:
        message = send(claim)
    except (PermanentError, RetryableError) as error:
        final = isinstance(error, PermanentError)
        _settle(new_uow, notification_id, "failed" if final else "pending", str(error))
        raise
    except Exception as error:
        # Unforeseen: back to pending, so the retry may claim it now rather than after
        # STALE_SENDING. Only the type is kept: the text of a foreign error may quote a secret.
        _settle(new_uow, notification_id, "pending", f"unexpected {type(error).__name__}")
        raise
    _settle(new_uow, notification_id, "sent", None, message)


def _settle(
    new_uow: UowFactory,
    notification_id: int,
    status: str,
    error: str | None,
    message: str | None = None,
) -> None:
    with new_uow() as uow:
        notifications.settle(
            uow.session,
            notification_id,
            status=status,
            at=uow.clock(),
            error=error,
            message_id=message,
        )
        uow.commit()
