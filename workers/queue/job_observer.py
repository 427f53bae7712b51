"""Outbox jobs seen from outside: the log fields each job's lines carry, and its metrics.

A dramatiq middleware opens the log scope for each message (so dramatiq's own lines about a
failed job carry the fields too) and closes it after; the wrapper around the actor's call adds
the job's name and key once the runner has loaded its row, and counts and times the delivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import Token
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from tasks import log_context
from tasks.outbox.runner import RunResult, Started
from workers import metrics

RunJob = Callable[[int, Started], RunResult]


class JobLogContext(Middleware):
    """Binds `job_id` and `queue` while a message is processed, and unbinds them after."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Open the scope; the job's name and key are added once its row is loaded."""
        args = message.args
        fields: dict[str, str | int] = {"queue": message.queue_name}
        if args and isinstance(args[0], int):
            fields["job_id"] = args[0]
        self._local.token = log_context.enter(fields)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        """Close the scope (after dramatiq has logged a failure, so that line has the fields)."""
        self._close()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """A skipped message closes its scope too."""
        self._close()

    def _close(self) -> None:
        token: Token[log_context.Fields] | None = getattr(self._local, "token", None)
        if token is not None:
            self._local.token = None
            log_context.leave(token)


def observed(run: RunJob) -> Callable[[int], RunResult]:
    """`run` with its job's fields added to the log scope, its outcome counted and timed."""

    def perform(outbox_id: int) -> RunResult:
        names: list[str] = []

        def started(job: str, key: str) -> None:
            names.append(job)
            log_context.add(job=job, correlation_id=key)

        begin = time.perf_counter()
        outcome = "retried"  # an exception: dramatiq retries the message
        try:
            result = run(outbox_id, started)
            outcome = result.outcome
            return result
        finally:
            metrics.record_job(names[0] if names else None, outcome, time.perf_counter() - begin)

    return perform
