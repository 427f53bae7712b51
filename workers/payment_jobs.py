"""Registers the payment jobs with this process's Stripe settings: capture, cancel, refund, and
the reconcile job that reads a PaymentIntent after a webhook event (never trusting the event)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from datetime import timedelta
from typing import Any

from models.db.uow import UowFactory
from tasks.outbox.jobs import external_job
from tasks.payments import releasing as refunds
from tasks.payments import running as payments
from tasks.payments.requesting import CANCEL_JOB, CAPTURE_JOB, RECONCILE_JOB, REFUND_JOB
from tasks.payments.running import Gateway, Runner, in_turn, outcome_of
from tasks.payments.syncing import reconcile
from workers.settings import Settings
from workers.stripe_adapter import StripeGateway


def gateway_factory(settings: Settings) -> Gateway:
    """A gateway made on first use (a missing key stays retryable until it is configured)."""
    made: list[StripeGateway] = []

    def get() -> StripeGateway:
        if not made:
            made.append(StripeGateway.from_settings(settings, settings.stripe_timeout_s))
        return made[0]

    return get


def side_by_side(workers: int) -> Runner:
    """A Runner whose calls share a thread pool of `workers`, made on first use (after the
    worker process forked); one call runs in the caller's thread."""
    pool: list[ThreadPoolExecutor] = []

    def run(calls: list[Callable[[], None]]) -> list[BaseException | None]:
        if len(calls) <= 1:
            return in_turn(calls)
        if not pool:
            pool.append(ThreadPoolExecutor(workers, thread_name_prefix="stripe"))
        # Each call keeps the job's log context (envelope, order) in its pool thread.
        futures = [pool[0].submit(copy_context().run, outcome_of, call) for call in calls]
        return [future.result() for future in futures]

    return run


def register(settings: Settings) -> None:
    """Register the four jobs on the payments queue."""
    gateway = gateway_factory(settings)
    # A claim older than a few Stripe timeouts belongs to a worker that died mid-call.
    stale = timedelta(seconds=3 * settings.stripe_timeout_s)
    runner = side_by_side(settings.stripe_concurrency)

    @external_job(CAPTURE_JOB, queue="payments")
    def capture(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        payments.capture(new_uow, gateway, payload, stale, runner)

    @external_job(CANCEL_JOB, queue="payments")
    def cancel(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        refunds.cancel(new_uow, gateway, payload, stale, runner)

    @external_job(REFUND_JOB, queue="payments")
    def refund(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        refunds.refund(new_uow, gateway, payload, stale, runner)

    @external_job(RECONCILE_JOB, queue="payments")
    def sync(new_uow: UowFactory, payload: dict[str, Any]) -> None:
        reconcile(new_uow, gateway, payload)
