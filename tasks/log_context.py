"""What is being processed right now (an envelope, an outbox job), for every log line to carry.

One context variable holding a small mapping: setting it costs one `ContextVar.set`, far less
than binding four structlog context variables. `workers.logs` merges it into each log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType

from tasks.messages.catalogue import DecodedMessage

Fields = Mapping[str, str | int]
_EMPTY: Fields = MappingProxyType({})
_CURRENT: ContextVar[Fields] = ContextVar("orderflow_log_context", default=_EMPTY)


def current() -> Fields:
    """The fields bound in this thread or task (empty when nothing is being processed)."""
    return _CURRENT.get()


def enter(fields: Fields) -> Token[Fields]:
    """Bind `fields` instead of what was bound; give the token to `leave` when done."""
    return _CURRENT.set(fields)


def leave(token: Token[Fields]) -> None:
    """Restore what was bound before the `enter` that made `token` (and any `add` since)."""
    _CURRENT.reset(token)


def add(**fields: str | int | None) -> None:
    """Add fields to what is bound (None values are left out); undone by the enclosing `leave`."""
    known = {key: value for key, value in fields.items() if value is not None}
    if known:
        _CURRENT.set({**_CURRENT.get(), **known})


def envelope_fields(message: DecodedMessage, envelope_id: str) -> Fields:
    """`envelope_id`, `type`, `order` (when the message names one) and `correlation_id` (the
    producer's, else the envelope id, so related lines can always be found by one field)."""
    envelope = message.envelope
    fields: dict[str, str | int] = {
        "envelope_id": envelope_id,
        "type": envelope.type,
        "correlation_id": envelope.correlation_id or envelope_id,
    }
    number = getattr(message.data, "number", None)
    if isinstance(number, str):
        fields["order"] = number
    return fields


def job_fields(job: str, key: str, outbox_id: int) -> Fields:
    """The fields of an outbox job: its name, id, and its key as the correlation id."""
    return {"job": job, "job_id": outbox_id, "correlation_id": key}
