"""Database trouble during an ingress batch: what it was, and applying the batch again.

Transient trouble (a deadlock, a serialization failure, a lock timeout) is retried at once, with
jitter; a second failure splits the batch in halves, each applied the same way, so one bad
envelope cannot hold back the others. A lost connection or a restarting database is waited out
with the whole batch. Only an envelope that fails alone stays pending, to be delivered again
(and so count towards ORDERFLOW_INGRESS_MAX_DELIVERIES).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError

from workers import metrics
from workers.logs import scrub_text

log = logging.getLogger("orderflow.ingress")
T = TypeVar("T")
R = TypeVar("R")
# SQLSTATEs we retry, by the reason the metric and the log line give.
TRANSIENT_STATES = {
    "40P01": "deadlock",
    "40001": "serialization",
    "55P03": "lock_timeout",  # lock_not_available (lock_timeout, NOWAIT)
    "57014": "lock_timeout",  # query_canceled (statement_timeout)
    "57P01": "restart",  # admin_shutdown: the server is stopping
    "57P02": "restart",  # crash_shutdown
    "57P03": "restart",  # cannot_connect_now: starting up
}
WAIT_OUT = frozenset({"connection", "restart"})
RETRY_JITTER_S = 0.05
MAX_WAIT_S = 5.0
MESSAGE_CHARS = 200


@dataclass(frozen=True)
class Trouble:
    """One database error, as a log line may show it (no SQL, no parameters, no password)."""

    reason: str  # deadlock | serialization | lock_timeout | connection | restart | database
    error_class: str  # SQLAlchemy's class / the driver's class
    sqlstate: str | None
    message: str

    @property
    def transient(self) -> bool:
        """Whether applying again may well succeed."""
        return self.reason != "database"


def diagnose(error: SQLAlchemyError) -> Trouble:
    """Name the trouble behind a SQLAlchemy error."""
    orig = error.orig if isinstance(error, DBAPIError) else None
    sqlstate = getattr(orig, "sqlstate", None)
    sqlstate = sqlstate if isinstance(sqlstate, str) else None
    classes = type(error).__name__ + (f"/{type(orig).__name__}" if orig is not None else "")
    text = str(orig if orig is not None else error).strip().splitlines()
    message = scrub_text(text[0] if text else "")[:MESSAGE_CHARS]
    return Trouble(_reason(error, sqlstate, message), classes, sqlstate, message)


def _reason(error: SQLAlchemyError, sqlstate: str | None, message: str) -> str:
    if sqlstate in TRANSIENT_STATES:
        return TRANSIENT_STATES[sqlstate]
    if sqlstate is not None and sqlstate.startswith("08"):
        return "connection"
    if isinstance(error, DisconnectionError) or getattr(error, "connection_invalidated", False):
        return "connection"
    if "database is locked" in message:  # SQLite's busy timeout ran out
        return "lock_timeout"
    if type(getattr(error, "orig", None)).__name__ == "OperationalError" and sqlstate is None:
        return "connection"  # psycopg: refused, reset or closed before the server answered
    return "database"


class BatchRetry:
    """Applies a batch with `attempt` (one transaction), through the trouble it meets."""

    def __init__(self, consumer: str, stop: threading.Event, rng: random.Random | None = None):
        self.consumer = consumer
        self.stop = stop
        self.rng = rng or random.Random()  # jitter, not secrecy

    def apply(self, batch: Sequence[T], attempt: Callable[[Sequence[T]], list[R]]) -> list[R]:
        """What `attempt` returned for every part applied; parts that failed alone stay out."""
        result = self._try(batch, attempt, 1)
        if not isinstance(result, Trouble):
            return result
        if result.reason in WAIT_OUT:
            return self._wait_out(batch, attempt)
        if result.transient and not self.stop.wait(self.rng.uniform(0, RETRY_JITTER_S)):
            again = self._try(batch, attempt, 2)
            if not isinstance(again, Trouble):
                return again
        return self._split(batch, attempt)

    def _split(self, batch: Sequence[T], attempt: Callable[[Sequence[T]], list[R]]) -> list[R]:
        if len(batch) == 1:
            log.warning(
                "ingress envelope failed alone; left pending to be delivered again",
                extra={"consumer": self.consumer, "entries": 1},
            )
            return []
        half = len(batch) // 2
        return self.apply(batch[:half], attempt) + self.apply(batch[half:], attempt)

    def _wait_out(self, batch: Sequence[T], attempt: Callable[[Sequence[T]], list[R]]) -> list[R]:
        """Apply again with growing pauses until the database is back (or we are stopped)."""
        tries = 1
        while not self.stop.wait(min(MAX_WAIT_S, 0.1 * 2**tries) * self.rng.uniform(0.5, 1.0)):
            tries = min(tries + 1, 10)
            result = self._try(batch, attempt, tries)
            if not isinstance(result, Trouble):
                return result
            if result.reason not in WAIT_OUT:
                return self._split(batch, attempt)
        return []  # stopping: the entries stay pending for whoever comes next

    def _try(
        self, batch: Sequence[T], attempt: Callable[[Sequence[T]], list[R]], number: int
    ) -> list[R] | Trouble:
        """One attempt: what it returned, or its trouble (logged and counted)."""
        try:
            return attempt(batch)
        except SQLAlchemyError as error:
            trouble = diagnose(error)
        metrics.record_ingress_retry(trouble.reason)
        log.warning(
            "ingress batch failed: %s (%s, SQLSTATE %s): %s",
            trouble.reason,
            trouble.error_class,
            trouble.sqlstate or "-",
            trouble.message,
            extra={
                "reason": trouble.reason,
                "error_class": trouble.error_class,
                "sqlstate": trouble.sqlstate,
                "error": trouble.message,
                "entries": len(batch),
                "attempt": number,
                "consumer": self.consumer,
            },
        )
        return trouble
