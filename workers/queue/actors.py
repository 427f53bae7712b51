"""One dramatiq actor per queue; each runs outbox jobs by id."""

from __future__ import annotations

from collections.abc import Callable

import dramatiq

from models.db.uow import QUEUES
from tasks.outbox.runner import RunResult

JOB_MAX_ATTEMPTS = 20
DEFAULT_MAX_BACKOFF_MS = 60_000
# A mail server or Stripe back from an outage should see its queue drain within seconds.
MAX_BACKOFF_MS = {"notifications": 15_000, "payments": 15_000}


def actor_name(queue: str) -> str:
    """The actor that runs outbox jobs on `queue`."""
    return f"run_job_{queue}"


def declare_actors(broker: dramatiq.Broker, run: Callable[[int], RunResult]) -> None:
    """Bind one actor per queue to `broker`; each delegates to `run(outbox_id)`."""
    for queue in QUEUES:

        def perform(outbox_id: int) -> None:
            run(outbox_id)

        dramatiq.actor(
            actor_name=actor_name(queue),
            queue_name=queue,
            broker=broker,
            max_backoff=MAX_BACKOFF_MS.get(queue, DEFAULT_MAX_BACKOFF_MS),
        )(perform)
