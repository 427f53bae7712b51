"""Outbox-driven jobs: what each one is (its kind: a name and a queue) and what runs it.

Nothing registers itself on import: each job folder offers its specs, and the composition root
(workers/runtime.py) builds one `JobRegistry` of them with the adapters they call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from models.db.tables import ProbeEffect
from models.db.uow import JobKind, UnitOfWork, UowFactory
from models.domain.errors import PermanentError

JobFn = Callable[[UnitOfWork, dict[str, Any]], None]
ExternalFn = Callable[[UowFactory, dict[str, Any]], None]


@dataclass(frozen=True)
class JobSpec:
    """A job: transactional (`fn`, run inside the outbox row's transaction) or external."""

    kind: JobKind
    fn: JobFn | None = None
    # An external job calls out (SMTP, HTTP, Stripe) in transactions of its own and keeps its
    # own exactly-once record; it is retried until it succeeds or fails permanently.
    external: ExternalFn | None = None

    @property
    def name(self) -> str:
        """The job's name, as stored on its outbox rows."""
        return self.kind.name

    @property
    def queue(self) -> str:
        """The queue it runs on (its kind's, the one source of it)."""
        return self.kind.queue


class JobRegistry:
    """The jobs one process can run, by name."""

    def __init__(self, specs: Iterable[JobSpec] = ()) -> None:
        self._specs: dict[str, JobSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: JobSpec) -> None:
        """Add a job; a name is taken once."""
        if spec.name in self._specs:
            raise ValueError(f"job {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> JobSpec:
        """The job called `name`; unknown names are permanent failures."""
        try:
            return self._specs[name]
        except KeyError:
            raise PermanentError("unknown_job", f"no job is registered as {name!r}") from None

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self._specs.values())


PROBE_JOB = JobKind("system.probe")
PROBE_MAX_WORK_MS = 1000


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


PROBE = JobSpec(PROBE_JOB, fn=probe)
