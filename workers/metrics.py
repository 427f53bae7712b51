"""Prometheus metrics of every orderflow process: names, labels and the few recording helpers the
instrumented points call (ingress batch, outbox job, Stripe call, SMTP send, scheduler job,
webhook request). Label values come from fixed sets; names are in docs/observability.md.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from tasks.intake.ingest import Outcome, Timings

# Seconds per envelope: a set-based run of 100 takes a few ms, one envelope well under one.
HANDLER_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
# Calls out (Stripe, SMTP), jobs and batches: milliseconds to the longest timeouts.
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 80.0)
UNKNOWN = "unknown"
OTHER = "other"

MESSAGES = Counter(
    "orderflow_messages",
    "Envelopes the ingress consumed, by type and outcome (applied|duplicate|parked|quarantined).",
    ["type", "outcome"],
)
QUARANTINED = Counter(
    "orderflow_quarantined", "Envelopes quarantined by the ingress, by reason.", ["reason"]
)
HANDLER_SECONDS = Histogram(
    "orderflow_handler_seconds",
    "Seconds per envelope spent applying a run of one type (one envelope, or a set-based run), "
    "observed once per run.",
    ["type"],
    buckets=HANDLER_BUCKETS,
)
INGRESS_RETRIES = Counter(
    "orderflow_ingress_retries",
    "Ingress batch attempts that failed with database trouble and are applied again, by reason "
    "(deadlock|serialization|lock_timeout|connection|restart|database).",
    ["reason"],
)
INGRESS_BATCH_SECONDS = Histogram(
    "orderflow_ingress_batch_seconds",
    "Seconds per ingress batch: decode, apply, commit and acknowledge.",
    buckets=CALL_BUCKETS,
)
JOBS = Counter(
    "orderflow_jobs",
    "Outbox job deliveries, by job and outcome (done|duplicate|missing|failed|retried).",
    ["job", "outcome"],
)
JOB_SECONDS = Histogram(
    "orderflow_job_seconds", "Seconds per outbox job delivery.", ["job"], buckets=CALL_BUCKETS
)
STRIPE_REQUESTS = Counter(
    "orderflow_stripe_requests",
    "Calls to Stripe, by operation and outcome (succeeded|declined|refused|unclear|auth_failed).",
    ["operation", "outcome"],
)
STRIPE_SECONDS = Histogram(
    "orderflow_stripe_request_seconds",
    "Seconds per call to Stripe.",
    ["operation"],
    buckets=CALL_BUCKETS,
)
SMTP = Counter(
    "orderflow_smtp",
    "Emails handed to the SMTP server, by outcome (sent or a reason).",
    ["outcome"],
)
SMTP_SECONDS = Histogram(
    "orderflow_smtp_seconds", "Seconds per email sent (connect to quit).", buckets=CALL_BUCKETS
)
SCHEDULER_TICKS = Counter(
    "orderflow_scheduler_ticks",
    "Periodic job runs of this scheduler, by job and outcome (ok|failed).",
    ["job", "outcome"],
)
SCHEDULER_SECONDS = Histogram(
    "orderflow_scheduler_job_seconds",
    "Seconds per periodic job run.",
    ["job"],
    buckets=CALL_BUCKETS,
)
SCHEDULER_LAST_SUCCESS = Gauge(
    "orderflow_scheduler_last_success_timestamp_seconds",
    "Unix time a periodic job last ended without an error in this scheduler.",
    ["job"],
    multiprocess_mode="max",
)
WEBHOOK_REQUESTS = Counter(
    "orderflow_webhook_requests",
    "Requests to the Stripe webhook endpoint, by HTTP status.",
    ["status"],
)
WEBHOOK_SECONDS = Histogram(
    "orderflow_webhook_request_seconds",
    "Seconds per request to the Stripe webhook endpoint.",
    buckets=CALL_BUCKETS,
)


class BoundedLabel:
    """A label value guard: plain codes pass until `limit` distinct ones were seen; anything
    else (free text, or one code too many) becomes `other`, so series stay few."""

    def __init__(self, limit: int = 64, pattern: str = r"[a-z0-9][a-z0-9_.:-]{0,63}") -> None:
        self._limit = limit
        self._pattern = re.compile(pattern)
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return UNKNOWN
        if value in self._seen:
            return value
        if not self._pattern.fullmatch(value):
            return OTHER
        with self._lock:
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
        return value


quarantine_reason = BoundedLabel()
job_name = BoundedLabel()
smtp_outcome = BoundedLabel(limit=16)


@lru_cache(maxsize=512)
def _handler_child(type_: str) -> Histogram:
    # `labels()` takes a lock and builds a tuple: about 4 us; the cached child costs nothing.
    return HANDLER_SECONDS.labels(type_)


def record_ingress_batch(outcomes: Sequence[Outcome], timings: Timings, seconds: float) -> None:
    """Count a committed batch's outcomes (one increment per type and outcome, not per
    envelope) and observe its run timings and its own duration."""
    counts: dict[tuple[str, str], int] = {}
    for outcome in outcomes:
        message = outcome.message
        key = (message.envelope.type if message is not None else UNKNOWN, outcome.result)
        counts[key] = counts.get(key, 0) + 1
        if outcome.result == "quarantined":
            QUARANTINED.labels(quarantine_reason(outcome.reason)).inc()
    for (type_, result), count in counts.items():
        MESSAGES.labels(type_, result).inc(count)
    for type_, envelopes, spent in timings:
        _handler_child(type_).observe(spent / envelopes)
    INGRESS_BATCH_SECONDS.observe(seconds)


def record_ingress_retry(reason: str) -> None:
    """One ingress batch attempt that failed with database trouble (`reason` is a fixed word)."""
    INGRESS_RETRIES.labels(reason).inc()


def record_job(job: str | None, outcome: str, seconds: float) -> None:
    """One outbox job delivery: its outcome and duration."""
    label = job_name(job)
    JOBS.labels(label, outcome).inc()
    JOB_SECONDS.labels(label).observe(seconds)


def record_stripe(operation: str, outcome: str, seconds: float) -> None:
    """One call to Stripe (operation and outcome are fixed words of the adapter)."""
    STRIPE_REQUESTS.labels(operation, outcome).inc()
    STRIPE_SECONDS.labels(operation).observe(seconds)


def record_smtp(outcome: str, seconds: float) -> None:
    """One email handed (or not) to the SMTP server; `outcome` is `sent` or our error reason."""
    SMTP.labels(smtp_outcome(outcome)).inc()
    SMTP_SECONDS.observe(seconds)


def record_webhook(status: int, seconds: float) -> None:
    """One request to the webhook endpoint, by its HTTP status."""
    WEBHOOK_REQUESTS.labels(str(status) if 100 <= status <= 599 else OTHER).inc()
    WEBHOOK_SECONDS.observe(seconds)


def record_scheduler(job: str, outcome: str, seconds: float) -> None:
    """One run of a periodic job (`ok` or `failed`); a success moves its last-success time."""
    SCHEDULER_TICKS.labels(job, outcome).inc()
    SCHEDULER_SECONDS.labels(job).observe(seconds)
    if outcome == "ok":
        SCHEDULER_LAST_SUCCESS.labels(job).set(time.time())
