"""The dramatiq Redis broker, tuned so a dead worker's messages return within seconds."""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.common import dq_name
from dramatiq.middleware import AgeLimit, Middleware, Retries, ShutdownNotifications, TimeLimit

from models.db.uow import QUEUES
from workers.settings import Settings

log = logging.getLogger("orderflow.broker")
NAMESPACE = "orderflow:dramatiq"


def count_queue(pipe: Any, queue: str) -> str:
    """Add to a Redis pipeline the four counts of a dramatiq queue, from its internal key
    layout (read for status and metrics only): ready ids (LLEN), unacknowledged messages (HLEN),
    delayed messages (HLEN of the delay queue's hash), dead letters (ZCARD). Returns the key of
    the ready list."""
    ready = f"{NAMESPACE}:{queue}"
    pipe.llen(ready)
    pipe.hlen(f"{ready}.msgs")
    pipe.hlen(f"{ready}.DQ.msgs")
    pipe.zcard(f"{ready}.XQ")
    return ready


# Options a message may carry that change how it is run. Our actors set their own; a message
# that arrives with any of these (a producer writing to Redis directly) has them removed.
FOREIGN_OPTIONS = (
    "max_retries",
    "min_backoff",
    "max_backoff",
    "retry_when",
    "throws",
    "time_limit",
    "max_age",
    "notify_shutdown",
    "on_success",
    "on_failure",
    "pipe_target",
)
JOB_TIME_LIMIT_MS = 5 * 60 * 1000
JOB_MAX_RETRIES = 20


class IgnoreProducerOptions(Middleware):
    """Drops run options that came with a message; only the actor's own options count."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        for option in FOREIGN_OPTIONS:
            message.options.pop(option, None)


def build_broker(
    redis_url: str, settings: Settings, *, maintenance_chance: int | None = None
) -> RedisBroker:
    """A RedisBroker for orderflow's queues, not yet installed as dramatiq's global broker."""
    middleware: list[Middleware] = [
        IgnoreProducerOptions(),
        AgeLimit(),
        TimeLimit(time_limit=JOB_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Retries(max_retries=JOB_MAX_RETRIES, min_backoff=500, max_backoff=60_000),
    ]
    broker = RedisBroker(  # type: ignore[no-untyped-call]  # dramatiq leaves it unannotated
        url=redis_url,
        namespace=NAMESPACE,
        middleware=middleware,
        # dramatiq's defaults (60 s heartbeat, clean-up on 0.1 % of calls) bring a SIGKILLed
        # worker's messages back after 3-18 minutes; these bring them back within seconds.
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=maintenance_chance or settings.maintenance_chance,
    )
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


class DeadWorkerSweeper(threading.Thread):
    """Moves a dead worker's unacked messages back to their queues every few seconds.

    dramatiq only does this as a random side effect of broker calls on the same queue, and an
    idle queue is polled about once a second: with any sane chance that takes minutes. This
    thread calls each queue with clean-up forced, so recovery takes heartbeat_timeout plus
    one period.
    """

    def __init__(self, redis_url: str, settings: Settings, stop: threading.Event) -> None:
        super().__init__(name="dead-worker-sweeper", daemon=True)
        self._broker = build_broker(redis_url, settings, maintenance_chance=MAINTENANCE_SCALE)
        self._period_s = max(1.0, settings.heartbeat_timeout_ms / 1000 / 4)
        self._stop = stop

    def sweep_once(self) -> None:
        """Run dramatiq's clean-up on every queue and its delay queue."""
        for queue in QUEUES:
            for name in (queue, dq_name(queue)):
                self._broker.do_qsize(name)

    def run(self) -> None:
        """Sweep until stopped; a Redis outage only skips sweeps."""
        while not self._stop.wait(self._period_s):
            try:
                self.sweep_once()
            except Exception as error:  # noqa: BLE001 - Redis down: try again next period
                log.warning("dead-worker sweep skipped: %s", type(error).__name__)
        self._broker.close()
