"""Which ingress consumers are alive: each keeps a heartbeat key while its thread runs, so that
only the entries of consumers without one (dead), and our own left-overs, are taken over; a live
consumer still applying a slow batch keeps its entries however long it takes."""

from __future__ import annotations

import contextlib
import logging
import threading

import redis

from workers.queue import streams

log = logging.getLogger("orderflow.ingress")
HEARTBEAT_PREFIX = "orderflow:ingress:alive:"


def heartbeat_key(consumer: str) -> str:
    """The key that says `consumer` is alive while it exists."""
    return HEARTBEAT_PREFIX + consumer


class Heartbeat(threading.Thread):
    """Renews `consumer`'s heartbeat key (it lives `ttl_ms`) while `owner` runs."""

    def __init__(self, redis_url: str, consumer: str, ttl_ms: int, owner: threading.Thread):
        super().__init__(name=f"{owner.name}-heartbeat", daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.key = heartbeat_key(consumer)
        self.ttl_ms = max(ttl_ms, 300)
        self.owner = owner
        self.stop_event = threading.Event()

    def run(self) -> None:
        """Beat three times per lifetime, so one late beat does not make us look dead."""
        while self.owner.is_alive() and not self.stop_event.is_set():
            try:
                self.client.set(self.key, b"1", px=self.ttl_ms)
            except redis.RedisError as error:
                log.warning("ingress heartbeat failed: %s", type(error).__name__)
            self.stop_event.wait(self.ttl_ms / 3000)
        # A clean stop: what we still hold may go at once (else the key expires by itself).
        with contextlib.suppress(redis.RedisError):
            self.client.delete(self.key)
        self.client.close()


def dead_owners(client: redis.Redis, me: str) -> list[str]:
    """Consumers other than `me` that hold entries and have no heartbeat."""
    others = sorted(owner for owner in streams.owners(client) if owner != me)
    if not others:
        return []
    pipe = client.pipeline(transaction=False)
    for owner in others:
        pipe.exists(heartbeat_key(owner))
    return [owner for owner, alive in zip(others, pipe.execute(), strict=True) if not alive]


def take_over(
    client: redis.Redis, me: str, idle_ms: int, count: int
) -> list[tuple[streams.Entry, int]]:
    """Our own entries left pending (they failed alone), then dead consumers' idle entries."""
    claimed: list[tuple[streams.Entry, int]] = []
    for owner in [me, *dead_owners(client, me)]:
        if len(claimed) >= count:
            break
        got = streams.claim_from(client, me, owner, idle_ms, count - len(claimed))
        if got:
            why = "left pending after failing alone" if owner == me else "its heartbeat stopped"
            log.info(
                "took over %d ingress entries from %s: %s, idle for %d ms or more",
                len(got),
                owner,
                why,
                idle_ms,
                extra={"from_consumer": owner, "entries": len(got), "why": why},
            )
        claimed += got
    return claimed
