"""The outside world as job logic sees it: Protocols that the adapters in workers/adapters/
implement, and the fakes in tests/fakes/ too. Job logic never imports a vendor library."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

# Now, aware UTC: job logic reads the unit of work's clock, never the wall clock.
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class IntentState:
    """A PaymentIntent as Stripe holds it now; amounts in minor units."""

    id: str
    status: str
    amount: int
    amount_capturable: int
    amount_received: int
    amount_refunded: int
    currency: str
    capture_before: datetime | None
    latest_charge: str | None
    cancellation_reason: str | None


@dataclass(frozen=True)
class RefundResult:
    """A refund Stripe created (or replayed for our key)."""

    id: str
    amount: int
    status: str


class PaymentGateway(Protocol):
    """Card payments (Stripe): every call that changes money carries an idempotency key. Errors
    are ours: `UnclearOutcome` when the effect may have happened, `PermanentError` for a
    refusal, `RetryableError` otherwise."""

    def retrieve(self, intent_id: str) -> IntentState:
        """The PaymentIntent's real state."""
        ...

    def capture(self, intent_id: str, amount: int, idempotency_key: str) -> IntentState:
        """Capture `amount` of the hold."""
        ...

    def cancel(self, intent_id: str, idempotency_key: str) -> IntentState:
        """Release the hold."""
        ...

    def refund(self, intent_id: str, amount: int | None, idempotency_key: str) -> RefundResult:
        """Refund `amount` (None: all) of what was captured."""
        ...


@dataclass(frozen=True)
class Rendered:
    """One email's subject and bodies."""

    subject: str
    text: str
    html: str


class Renderer(Protocol):
    """Email templates: `<template>.subject.txt`, `.txt` and `.html` filled with `context`."""

    def render(self, template: str, context: dict[str, Any]) -> Rendered:
        """The email's subject (one line) and its two bodies, every value escaped in HTML."""
        ...


class Mailer(Protocol):
    """Sends one email; 4xx and network trouble raise `RetryableError`, 5xx `PermanentError`."""

    def send(self, email: EmailMessage) -> None:
        """Deliver `email` as it is (its Message-ID included)."""
        ...


class WebhookPoster(Protocol):
    """POSTs one signed JSON body to a manufacturer's URL; errors say whether to try again."""

    def post(self, url: str, body: bytes, *, ident: str) -> None:
        """Sign and send `body`; `ident` is the message's stable id."""
        ...


class StreamAppender(Protocol):
    """Appends outbound events to the egress stream, at most once per event id."""

    def append_once(self, event: dict[str, Any]) -> bool:
        """Append unless an event with its id was appended before; True when appended."""
        ...
