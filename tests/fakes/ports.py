"""In-memory fakes of tasks/ports.py, for unit tests of job bodies: no network, no Redis."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from models.domain.errors import PermanentError
from tasks.ports import IntentState, RefundResult, Rendered


@dataclass
class FakeGateway:
    """PaymentIntents held in memory; a key replays its first answer, as Stripe's do."""

    intents: dict[str, IntentState] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, intent id)
    _replies: dict[str, Any] = field(default_factory=dict)

    def authorize(self, intent_id: str, amount: int, capture_before: datetime | None) -> None:
        """A PaymentIntent holding `amount`, capturable until `capture_before`."""
        self.intents[intent_id] = IntentState(
            id=intent_id, status="requires_capture", amount=amount, amount_capturable=amount,
            amount_received=0, amount_refunded=0, currency="eur", capture_before=capture_before,
            latest_charge=f"ch_{intent_id}", cancellation_reason=None,
        )  # fmt: skip

    def retrieve(self, intent_id: str) -> IntentState:
        self.calls.append(("retrieve", intent_id))
        return self.intents[intent_id]

    def capture(self, intent_id: str, amount: int, idempotency_key: str) -> IntentState:
        self.calls.append(("capture", intent_id))
        if idempotency_key not in self._replies:
            state = self.intents[intent_id]
            if amount > state.amount_capturable:
                raise PermanentError("amount_too_large", "above the amount capturable")
            self.intents[intent_id] = replace(state, status="succeeded", amount_capturable=0,
                                              amount_received=amount)  # fmt: skip
            self._replies[idempotency_key] = self.intents[intent_id]
        reply: IntentState = self._replies[idempotency_key]
        return reply

    def cancel(self, intent_id: str, idempotency_key: str) -> IntentState:
        self.calls.append(("cancel", intent_id))
        if idempotency_key not in self._replies:
            state = self.intents[intent_id]
            self.intents[intent_id] = replace(
                state, status="canceled", amount_capturable=0, cancellation_reason="requested"
            )
            self._replies[idempotency_key] = self.intents[intent_id]
        reply: IntentState = self._replies[idempotency_key]
        return reply

    def refund(self, intent_id: str, amount: int | None, idempotency_key: str) -> RefundResult:
        self.calls.append(("refund", intent_id))
        if idempotency_key not in self._replies:
            state = self.intents[intent_id]
            taken = state.amount_received - state.amount_refunded if amount is None else amount
            self.intents[intent_id] = replace(state, amount_refunded=state.amount_refunded + taken)
            self._replies[idempotency_key] = RefundResult(f"re_{intent_id}", taken, "succeeded")
        reply: RefundResult = self._replies[idempotency_key]
        return reply

    def effects(self, operation: str) -> int:
        """How many calls of `operation` were made (replays included)."""
        return sum(1 for name, _ in self.calls if name == operation)


@dataclass
class FakeMailer:
    """Keeps every email it is handed."""

    sent: list[EmailMessage] = field(default_factory=list)

    def send(self, email: EmailMessage) -> None:
        self.sent.append(email)


class FakeRenderer:
    """A subject and bodies that name the template and the order, nothing more."""

    def render(self, template: str, context: dict[str, Any]) -> Rendered:
        number = context.get("order_number")
        return Rendered(f"{template} {number}", f"{template}\n", f"<p>{template}</p>\n")


@dataclass
class FakeWebhookPoster:
    """Keeps every (url, body, ident) it is asked to post."""

    posts: list[tuple[str, bytes, str]] = field(default_factory=list)

    def post(self, url: str, body: bytes, *, ident: str) -> None:
        self.posts.append((url, body, ident))


@dataclass
class FakeStreamAppender:
    """An egress stream in a list, once per event id."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def append_once(self, event: dict[str, Any]) -> bool:
        if any(e["id"] == event["id"] for e in self.events):
            return False
        self.events.append(event)
        return True
