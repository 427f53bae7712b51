"""Queue depths read from Redis when Prometheus scrapes: dramatiq's queues and the ingress
stream. One pipelined round trip with a short timeout; Redis being away yields
`orderflow_redis_up 0` and no depths, never a failed scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from redis.backoff import NoBackoff
from redis.retry import Retry

from models.db.uow import QUEUES
from workers.queue.broker import count_queue
from workers.queue.streams import INGRESS_GROUP, INGRESS_STREAM, entry_time

log = logging.getLogger("orderflow.metrics")
SCRAPE_TIMEOUT_S = 0.5


class QueueCollector(Collector):
    """`orderflow_queue_messages{queue,state}`, the ingress stream gauges, `orderflow_redis_up`."""

    def __init__(
        self, redis_url: str, queues: Sequence[str] = QUEUES, timeout_s: float = SCRAPE_TIMEOUT_S
    ) -> None:
        self._queues = tuple(queues)
        # No retries: a scrape waits at most one timeout per connect and per reply.
        self._client = redis.Redis.from_url(
            redis_url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    def close(self) -> None:
        """Drop the connection."""
        self._client.close()

    def collect(self) -> Iterator[Metric]:
        """Read everything in one round trip; on any Redis trouble report only `up 0`."""
        up = GaugeMetricFamily(
            "orderflow_redis_up", "Whether the metrics endpoint could read queue depths from Redis."
        )
        try:
            replies = self._read()
            families = [
                self._queue_family(replies[: 4 * len(self._queues)]),
                *self._stream_families(replies[4 * len(self._queues) :]),
            ]
        except (redis.RedisError, OSError) as error:  # down, slow, or refusing: every scrape
            log.debug("queue depths unavailable: %s", type(error).__name__)
            families = []
        except Exception as error:  # noqa: BLE001 - a surprise must not fail the whole scrape
            log.warning("queue depths unreadable: %s", type(error).__name__)
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _read(self) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for queue in self._queues:
            count_queue(pipe, queue)
        pipe.xlen(INGRESS_STREAM)
        pipe.xinfo_groups(INGRESS_STREAM)
        pipe.xrange(INGRESS_STREAM, count=1)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        # XINFO fails on a stream that does not exist yet; anything else failing is trouble.
        for index, reply in enumerate(replies):
            if isinstance(reply, Exception) and index != len(replies) - 2:
                raise reply
        return replies

    def _queue_family(self, replies: list[Any]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "orderflow_queue_messages",
            "dramatiq messages per queue: ready (waiting for a worker), in_progress (taken, not "
            "acknowledged), delayed (retries waiting out their backoff), dead (dead letters).",
            labels=["queue", "state"],
        )
        for index, queue in enumerate(self._queues):
            ready, unacked, delayed, dead = (int(v) for v in replies[4 * index : 4 * index + 4])
            family.add_metric([queue, "ready"], ready)
            family.add_metric([queue, "in_progress"], max(0, unacked - ready))
            family.add_metric([queue, "delayed"], delayed)
            family.add_metric([queue, "dead"], dead)
        return family

    def _stream_families(self, replies: list[Any]) -> Iterator[GaugeMetricFamily]:
        length, groups, first = int(replies[0]), replies[1], replies[2]
        pending, lag = 0, None
        if not isinstance(groups, Exception):
            for group in groups:
                if _text(group.get("name")) == INGRESS_GROUP:
                    pending, lag = int(group.get("pending") or 0), group.get("lag")
        # Applied entries are deleted, so the stream holds only undelivered and pending ones.
        undelivered = int(lag) if lag is not None else max(0, length - pending)
        oldest = _age_s(first[0][0]) if first else 0.0
        yield _gauge("orderflow_ingress_stream_length", "Entries on the ingress stream.", length)
        yield _gauge(
            "orderflow_ingress_pending",
            "Ingress entries delivered to a consumer and not yet acknowledged.",
            pending,
        )
        yield _gauge("orderflow_ingress_lag", "Ingress entries not yet delivered.", undelivered)
        yield _gauge(
            "orderflow_ingress_oldest_age_seconds",
            "Age of the oldest entry still on the ingress stream (0 when empty).",
            oldest,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _age_s(entry_id: bytes | str) -> float:
    """Seconds since a stream entry was added."""
    return max(0.0, time.time() - entry_time(entry_id).timestamp())
