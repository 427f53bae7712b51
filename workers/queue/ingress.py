"""The ingress consumer: a thread in each worker process that applies envelopes from the
ingress stream in batches, one transaction per batch, and acknowledges them after commit."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from datetime import timedelta

import redis
from sqlalchemy.exc import SQLAlchemyError

from tasks import log_context
from tasks.intake.ingest import (
    IngestPolicy,
    Outcome,
    Timings,
    ingest_batch,
    quarantine_entry,
    resolve_parked,
)
from workers import metrics
from workers.logs import scrub_text
from workers.queue import streams
from workers.queue.ingress_liveness import Heartbeat, take_over
from workers.queue.ingress_retry import BatchRetry, diagnose
from workers.runtime import Runtime
from workers.settings import Settings

log = logging.getLogger("orderflow.ingress")
# Per-envelope lines after commit: applied ones only when debugging (thousands a second).
OUTCOME_LEVELS = {
    "applied": logging.DEBUG,
    "duplicate": logging.INFO,
    "parked": logging.INFO,
    "quarantined": logging.WARNING,
}
BLOCK_MS = 1000
RESOLVE_EVERY_S = 2.0
ERROR_PAUSE_S = 1.0


def policy_from(settings: Settings) -> IngestPolicy:
    """The ingress policy the settings describe."""
    return IngestPolicy(
        max_bytes=settings.ingress_max_bytes,
        keys=dict(settings.signing_key_pairs()),
        accept_unsigned=settings.accept_unsigned,
        park_for=timedelta(seconds=settings.park_for_s),
    )


class IngressConsumer(threading.Thread):
    """Reads new entries, takes over those of dead consumers, applies, acknowledges."""

    def __init__(self, rt: Runtime, stop: threading.Event, index: int = 0) -> None:
        super().__init__(name=f"ingress-{index}", daemon=True)
        self.rt = rt
        self.stop_event = stop
        self.client = redis.Redis.from_url(rt.redis_url)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{index}"
        self.policy = policy_from(rt.settings)
        self.batch = rt.settings.ingress_batch
        self.claim_idle_ms = int(rt.settings.ingress_claim_idle_s * 1000)
        self.applied = 0
        self.retry = BatchRetry(self.consumer, stop)

    def run(self) -> None:
        """Loop until stopped; Redis or database trouble pauses, it never ends the loop."""
        heartbeat = Heartbeat(self.rt.redis_url, self.consumer, self.claim_idle_ms, self)
        heartbeat.start()
        try:
            self._loop()
        finally:
            heartbeat.stop_event.set()
            heartbeat.join(5)
            self.client.close()

    def _loop(self) -> None:
        next_claim = next_resolve = 0.0
        while not self.stop_event.is_set():
            try:
                if time.monotonic() >= next_claim:
                    streams.ensure_group(self.client)
                    self._claim()
                    next_claim = time.monotonic() + self.claim_idle_ms / 1000 / 3
                if time.monotonic() >= next_resolve:
                    self._resolve()
                    next_resolve = time.monotonic() + RESOLVE_EVERY_S
                entries = streams.read_new(self.client, self.consumer, self.batch, BLOCK_MS)
                if entries:
                    self.apply([(entry, 1) for entry in entries])
            except SQLAlchemyError as error:  # resolving parked messages: tried again soon
                trouble = diagnose(error)
                log.warning(
                    "ingress paused: %s (%s, SQLSTATE %s): %s",
                    trouble.reason,
                    trouble.error_class,
                    trouble.sqlstate or "-",
                    trouble.message,
                    extra={"reason": trouble.reason},
                )
                self.stop_event.wait(ERROR_PAUSE_S)
            except (redis.RedisError, OSError) as error:
                log.warning("ingress paused: %s: %s", type(error).__name__, scrub_text(str(error)))
                next_claim = 0.0
                self.stop_event.wait(ERROR_PAUSE_S)
            except Exception:  # a bug must not silently end this consumer
                log.exception("ingress batch failed; its entries will be delivered again")
                next_claim = 0.0
                self.stop_event.wait(ERROR_PAUSE_S)

    def _resolve(self) -> None:
        with self.rt.new_uow() as uow:
            if resolve_parked(uow, self.policy):
                uow.commit()

    def _claim(self) -> None:
        claimed = take_over(self.client, self.consumer, self.claim_idle_ms, self.batch)
        if claimed:
            self.apply(claimed)

    def apply(self, entries: list[tuple[streams.Entry, int]]) -> list[Outcome]:
        """Apply a batch, through transient database trouble (see `ingress_retry`)."""
        return self.retry.apply(entries, self._apply_once)

    def _apply_once(self, entries: Sequence[tuple[streams.Entry, int]]) -> list[Outcome]:
        """Apply a batch in one transaction, then acknowledge it."""
        started = time.perf_counter()
        limit = self.rt.settings.ingress_max_deliveries
        timings: Timings = []
        with self.rt.new_uow() as uow:
            outcomes = []
            bodies = []
            for entry, deliveries in entries:
                if entry.body is None:
                    dump = json.dumps([f.decode(errors="replace") for f in entry.fields]).encode()
                    detail = "the stream entry has no 'envelope' field"
                    outcomes.append(quarantine_entry(uow, dump, "invalid_entry", detail))
                elif deliveries > limit:
                    detail = f"delivered {deliveries} times without being applied"
                    outcomes.append(quarantine_entry(uow, entry.body, "delivery_limit", detail))
                else:
                    bodies.append(entry.body)
            outcomes.extend(ingest_batch(uow, bodies, self.policy, timings))
            uow.commit()
        streams.finish(self.client, [entry.entry_id for entry, _ in entries])
        self.applied += sum(1 for o in outcomes if o.result == "applied")
        metrics.record_ingress_batch(outcomes, timings, time.perf_counter() - started)
        log_outcomes(outcomes)
        return outcomes


def log_outcomes(outcomes: list[Outcome]) -> None:
    """One line per committed envelope at its outcome's level, with its fields (never its body)."""
    enabled = {result for result, level in OUTCOME_LEVELS.items() if log.isEnabledFor(level)}
    for outcome in outcomes:
        if outcome.result not in enabled:
            continue
        fields: dict[str, object] = {"outcome": outcome.result}
        if outcome.message is not None and outcome.envelope_id is not None:
            fields.update(log_context.envelope_fields(outcome.message, outcome.envelope_id))
        elif outcome.envelope_id is not None:
            fields["envelope_id"] = outcome.envelope_id
        if outcome.reason:
            fields["reason"] = outcome.reason
        level = OUTCOME_LEVELS[outcome.result]
        log.log(level, "envelope %s", outcome.result, extra=fields)
