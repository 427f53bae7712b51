"""The registry of outbox-driven jobs: a name, the queue it runs on, and its function."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.db.tables import ProbeEffect
from models.db.uow import UnitOfWork, UowFactory
from models.domain.errors import PermanentError

JobFn = Callable[[UnitOfWork, dict[str, Any]], None]
ExternalFn = Callable[[UowFactory, dict[str, Any]], None]
QUEUES = ("default", "payments", "notifications", "bulk")


@dataclass(frozen=True)
class JobSpec:
    """A registered job: transactional (`fn`) or external (`external`)."""

    name: str
    queue: str
    fn: JobFn | None = None
    # An external job calls out (SMTP, HTTP, Stripe) in transactions of its own and keeps its
    # own exactly-once record; it is retried until it succeeds or fails permanently.
    external: ExternalFn | None = None


_REGISTRY: dict[str, JobSpec] = {}


def _check_queue(queue: str) -> None:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")


def job(name: str, queue: str = "default") -> Callable[[JobFn], JobFn]:
    """Register `fn` as the transactional job called `name`, run on `queue`."""
    _check_queue(queue)

    def register(fn: JobFn) -> JobFn:
        _REGISTRY[name] = JobSpec(name=name, queue=queue, fn=fn)
        return fn

    return register


def external_job(name: str, queue: str = "default") -> Callable[[ExternalFn], ExternalFn]:
    """Register `fn` as the external job called `name`, run on `queue`."""
    _check_queue(queue)

    def register(fn: ExternalFn) -> ExternalFn:
        _REGISTRY[name] = JobSpec(name=name, queue=queue, external=fn)
        return fn

    return register


def get_job(name: str) -> JobSpec:
    """The job called `name`; unknown names are permanent failures."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise PermanentError("unknown_job", f"no job is registered as {name!r}") from None


PROBE_MAX_WORK_MS = 1000


@job("system.probe")
def probe(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    """Record one effect; self-checks and tests count these to prove exactly-once delivery.

    `work_ms` holds the transaction open that long, like a real job, so that tests can kill a
    worker while jobs are in flight.
    """
    work_ms = min(int(payload.get("work_ms", 0)), PROBE_MAX_WORK_MS)
    uow.session.add(ProbeEffect(probe_key=str(payload["key"]), at=uow.clock()))
    uow.session.flush()
    if work_ms > 0:
        time.sleep(work_ms / 1000)
