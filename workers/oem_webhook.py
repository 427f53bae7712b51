"""The `notification.webhook` job: POST a message to a manufacturer's URL as signed JSON.

Claim, POST and settle are the notification steps of workers/notifier.py, so a message recorded
`sent` is never posted again. The body carries a stable `id` derived from the notification key:
should a worker die between the receiver's 2xx and our record of it, the message is posted
again after STALE_SENDING with the same id, and the receiver drops the copy.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
import uuid
from email.message import Message
from typing import IO, Any

from models.db import notifications
from models.db.uow import UowFactory
from models.domain.errors import PermanentError, RetryableError
from models.domain.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header
from tasks.notifications.staging import WEBHOOK_JOB
from tasks.outbox.jobs import external_job
from workers.notifier import deliver
from workers.settings import Settings

ID_HEADER = "Orderflow-Message-Id"
_NAMESPACE = uuid.UUID("0b5f3c2e-8f0a-4a43-a4b9-6f1d2c7e9a31")
# Worth another try: the receiver is busy, rate-limiting or broken for now (and every 5xx).
_RETRY_STATUS = frozenset({408, 425, 429})
_MAX_RESPONSE_BYTES = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is refused, not followed: the signed body goes where it was configured."""

    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def message_id(key: str) -> str:
    """The stable id of the message staged under `key` (same on every attempt)."""
    return str(uuid.uuid5(_NAMESPACE, key))


def body_of(claim: notifications.Claim) -> bytes:
    """The JSON body: the staged context plus the message id, compact with sorted keys."""
    document = {**claim.context, "id": message_id(claim.key)}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def post(url: str, body: bytes, secret: bytes, timeout_s: float, *, ident: str) -> None:
    """POST one signed body; our errors say whether trying again can help. Neither the secret
    nor the URL (it may hold a token) ever appears in an error."""
    if not url.startswith(("https://", "http://")):
        raise PermanentError("webhook_url_refused", "only http(s) URLs are called")
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "orderflow-webhooks/1",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: signature_header(secret, stamp, body),
        ID_HEADER: ident,
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            response.read(_MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as error:
        raise refusal(error.code) from None
    except urllib.error.URLError as error:
        reason = error.reason
        name = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
        raise RetryableError("webhook_unreachable", name) from None
    except (OSError, http.client.HTTPException) as error:
        raise RetryableError("webhook_unreachable", type(error).__name__) from None


def refusal(status: int) -> PermanentError | RetryableError:
    """What a non-2xx answer means: 5xx, 408, 425 and 429 pass; other answers will not change."""
    if status >= 500 or status in _RETRY_STATUS or status < 200:
        return RetryableError("webhook_http_error", f"HTTP {status}")
    if 300 <= status < 400:
        return PermanentError("webhook_redirected", f"HTTP {status}; redirects are not followed")
    return PermanentError("webhook_refused", f"HTTP {status}")


def register(settings: Settings) -> None:
    """Register the webhook job with this process's signing secret."""
    secret = settings.oem_webhook_secret.get_secret_value().encode()
    timeout_s = settings.oem_webhook_timeout_s

    @external_job(WEBHOOK_JOB, queue="notifications")
    def send_webhook(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        def send(claim: notifications.Claim) -> str:
            if not secret:
                # Never unsigned: the message waits until the secret is configured.
                raise RetryableError("webhook_unsigned", "ORDERFLOW_OEM_WEBHOOK_SECRET is not set")
            ident = message_id(claim.key)
            post(claim.recipient, body_of(claim), secret, timeout_s, ident=ident)
            return ident

        deliver(new_uow, int(payload["notification_id"]), send)
