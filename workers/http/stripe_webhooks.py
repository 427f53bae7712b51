"""The Stripe webhook endpoint (`POST /stripe/webhook`): a verified event of a type we handle
becomes a signed `stripe.event` envelope on the ingress stream (one XADD); the rest is refused
or ignored. The envelope id is derived from the event id, so a redelivery is deduplicated.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tasks.messages.catalogue import describe_errors
from tasks.messages.v1.stripe_event import StripeEventV1
from workers.http.asgi_metrics import CountResponses
from workers.http.stripe_signature import (
    DEFAULT_FUTURE_TOLERANCE_S,
    DEFAULT_TOLERANCE_S,
    SignatureError,
    verify_signature,
)
from workers.queue import client
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM
from workers.queue.wire import dumps

log = logging.getLogger(__name__)

PATH = "/stripe/webhook"
PRODUCER = "stripe-webhook"
MAX_BODY_BYTES = 1024 * 1024
HANDLED_TYPES = frozenset(
    {
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.canceled",
        "charge.refunded",
        "charge.expired",
    }
)
# Fixed forever: envelope ids of events already enqueued must stay the same.
EVENT_NAMESPACE = uuid.UUID("6f1c8a52-0d7e-5b43-9a51-3c2f0e9b7d14")

Enqueue = Callable[[bytes], None]


class Refused(Exception):  # noqa: N818 - an HTTP answer, not an error of ours
    """A request answered with `status` and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def envelope_id(event_id: str) -> uuid.UUID:
    """The envelope id of a Stripe event: the same for every delivery of that event."""
    return uuid.uuid5(EVENT_NAMESPACE, event_id)


def event_data(event: Mapping[str, Any]) -> dict[str, Any]:
    """The `stripe.event` data of a Stripe event: only what identifies it (validated)."""
    wrapper = event.get("data")
    obj = wrapper.get("object") if isinstance(wrapper, dict) else None
    reduced_object = (
        {key: obj[key] for key in ("id", "object", "metadata") if key in obj}
        if isinstance(obj, dict)
        else obj
    )
    data: dict[str, Any] = {
        key: event[key]
        for key in ("id", "type", "created", "livemode", "api_version", "account")
        if event.get(key) is not None
    }
    data["data"] = {"object": reduced_object}
    try:
        StripeEventV1.model_validate(data)
    except ValidationError as error:
        raise Refused(400, "unsupported event: " + describe_errors(error.errors())) from None
    return data


def stripe_event_envelope(
    event: Mapping[str, Any], signing_key: tuple[str, bytes] | None
) -> dict[str, Any]:
    """The signed envelope for a handled event (unsigned when no key is given)."""
    data = event_data(event)
    unsigned = client.envelope(
        StripeEventV1.TYPE,
        data,
        producer=PRODUCER,
        envelope_id=str(envelope_id(data["id"])),
        occurred_at=datetime.fromtimestamp(data["created"], tz=UTC),
    )
    return client.signed(unsigned, [signing_key] if signing_key else [])


def redis_enqueuer(redis_client: redis.Redis) -> Enqueue:
    """Enqueue envelope bytes on the ingress stream with one XADD."""

    def enqueue(body: bytes) -> None:
        redis_client.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: body})

    return enqueue


def create_app(
    webhook_secret: str,
    enqueue: Enqueue,
    *,
    signing_key: tuple[str, bytes] | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    future_tolerance_s: int = DEFAULT_FUTURE_TOLERANCE_S,
) -> Starlette:
    """The ASGI app; `signing_key` (key id, secret) signs our envelopes."""
    if not webhook_secret:
        raise ValueError("the Stripe webhook secret must not be empty")

    async def receive(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request)
            verify_signature(
                request.headers.get("stripe-signature"),
                body,
                webhook_secret,
                now=time.time(),
                tolerance_s=tolerance_s,
                future_tolerance_s=future_tolerance_s,
            )
            event = _parse_event(body)
            if event["type"] not in HANDLED_TYPES:
                return JSONResponse({"ignored": event["type"]})
            envelope = stripe_event_envelope(event, signing_key)
            await run_in_threadpool(enqueue, dumps(envelope))
        except SignatureError as error:
            log.warning("stripe webhook refused: %s", error.reason)
            return JSONResponse({"error": error.reason}, status_code=400)
        except Refused as refused:
            log.warning("stripe webhook refused: %s", refused.reason)
            return JSONResponse({"error": refused.reason}, status_code=refused.status)
        except (redis.RedisError, OSError) as error:
            # Stripe retries anything but 2xx, so the event is not lost.
            log.error("stripe webhook not enqueued (%s)", type(error).__name__)
            return JSONResponse({"error": "queue unavailable"}, status_code=503)
        log.info(
            "stripe event %s (%s) enqueued as %s",
            event["id"],
            event["type"],
            envelope["id"],
            extra={"envelope_id": envelope["id"], "type": StripeEventV1.TYPE},
        )
        return JSONResponse({"received": event["id"]})

    return Starlette(
        routes=[Route(PATH, receive, methods=["POST"])], middleware=[Middleware(CountResponses)]
    )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Refused(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refused(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, or absurdly deep nesting
        raise Refused(400, "body is not JSON") from None
    if not isinstance(event, dict):
        raise Refused(400, "event is not a JSON object")
    if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise Refused(400, "event without id or type")
    return event
