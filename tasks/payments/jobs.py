"""The payment jobs on the `payments` queue: capture, cancel, refund, and the reconcile that
reads a PaymentIntent after a webhook event (never trusting the event)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from models.db.uow import JobKind, UowFactory
from tasks.outbox.jobs import JobSpec
from tasks.payments import releasing, running, syncing
from tasks.payments.requesting import CANCEL_JOB, CAPTURE_JOB, RECONCILE_JOB, REFUND_JOB
from tasks.payments.running import Claimed, Gateway, Record, Runner

# The Stripe part of one operation, given the gateway (`running.capture_one`, ...).
StripePart = Callable[[Gateway, Claimed, list[Record]], None]


def payment_jobs(gateway: Gateway, stale: timedelta, runner: Runner) -> list[JobSpec]:
    """The four jobs, calling Stripe through `gateway`. A claim older than `stale` belongs to a
    worker that died mid-call; `runner` makes a batch's calls (side by side, or in turn)."""

    def claimed(kind: JobKind, work: StripePart) -> JobSpec:
        # Claim the payload's operations, run `work` on each, record every outcome at once.
        def run(new_uow: UowFactory, payload: dict[str, Any]) -> None:
            running.run_claimed(new_uow, payload, stale, partial(work, gateway), runner)

        return JobSpec(kind, external=run)

    def reconcile(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        syncing.reconcile(new_uow, gateway, payload)

    return [
        claimed(CAPTURE_JOB, running.capture_one),
        claimed(CANCEL_JOB, releasing.cancel_one),
        claimed(REFUND_JOB, releasing.refund_one),
        JobSpec(RECONCILE_JOB, external=reconcile),
    ]
