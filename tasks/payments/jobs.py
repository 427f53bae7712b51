"""The payment jobs on the `payments` queue: capture, cancel, refund, and the reconcile that
reads a PaymentIntent after a webhook event (never trusting the event)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.db.uow import UowFactory
from tasks.outbox.jobs import JobSpec
from tasks.payments import releasing, running, syncing
from tasks.payments.requesting import CANCEL_JOB, CAPTURE_JOB, RECONCILE_JOB, REFUND_JOB
from tasks.payments.running import Gateway, Runner


def payment_jobs(gateway: Gateway, stale: timedelta, runner: Runner) -> list[JobSpec]:
    """The four jobs, calling Stripe through `gateway`. A claim older than `stale` belongs to a
    worker that died mid-call; `runner` makes a batch's calls (side by side, or in turn)."""

    def capture(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        running.capture(new_uow, gateway, payload, stale, runner)

    def cancel(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        releasing.cancel(new_uow, gateway, payload, stale, runner)

    def refund(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        releasing.refund(new_uow, gateway, payload, stale, runner)

    def reconcile(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        syncing.reconcile(new_uow, gateway, payload)

    return [
        JobSpec(CAPTURE_JOB, external=capture),
        JobSpec(CANCEL_JOB, external=cancel),
        JobSpec(REFUND_JOB, external=refund),
        JobSpec(RECONCILE_JOB, external=reconcile),
    ]
