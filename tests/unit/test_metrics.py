"""The metrics registry and its recording points, in process: exact counter deltas for an ingress
batch, an outbox job, a periodic job and webhook requests; label values kept to fixed sets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from scheduler.jobs import PeriodicJob
from tasks import log_context
from tasks.intake.ingest import Outcome, Timings
from tasks.messages.catalogue import decode
from tasks.outbox.runner import RunResult, Started
from tests import factories as f
from workers import metrics
from workers.http.stripe_webhooks import PATH, create_app
from workers.queue.job_observer import JobLogContext, observed
from workers.scheduler_jobs import observed_jobs

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def sample(name: str, **labels: str) -> float:
    """A sample's current value in the process registry (0 when it does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


Reads = Mapping[str, Callable[[], float]]


def deltas(reads: Reads, action: Callable[[], object]) -> dict[str, float]:
    """How much each read changed while `action` ran (counters are process-wide)."""
    before = {key: read() for key, read in reads.items()}
    action()
    return {key: read() - before[key] for key, read in reads.items()}


def _outcome(result: str, type_: str | None, reason: str = "") -> Outcome:
    if type_ is None:
        return Outcome(result, reason)
    message = decode(f.body(f.envelope(type_, number="M1")), 256 * 1024)
    return Outcome(result, reason, str(message.envelope.id), message)


def test_an_ingress_batch_is_counted_by_type_outcome_and_reason() -> None:
    # Given a committed batch: 3 applied orders, 1 duplicate, 1 parked shipment, 2 quarantined
    outcomes = [
        *[_outcome("applied", "order.placed") for _ in range(3)],
        _outcome("duplicate", "order.placed"),
        _outcome("parked", "order.shipped", "awaiting_order"),
        _outcome("quarantined", None, "not_json"),
        _outcome("quarantined", "order.placed", "signature_invalid"),
    ]
    timings: Timings = [("order.placed", 4, 0.004), ("order.shipped", 1, 0.002)]
    count = "orderflow_messages_total"
    reads = {
        "applied": lambda: sample(count, type="order.placed", outcome="applied"),
        "duplicate": lambda: sample(count, type="order.placed", outcome="duplicate"),
        "parked": lambda: sample(count, type="order.shipped", outcome="parked"),
        "bad_unknown": lambda: sample(count, type="unknown", outcome="quarantined"),
        "bad_placed": lambda: sample(count, type="order.placed", outcome="quarantined"),
        "not_json": lambda: sample("orderflow_quarantined_total", reason="not_json"),
        "runs": lambda: sample("orderflow_handler_seconds_count", type="order.placed"),
        "run_sum": lambda: sample("orderflow_handler_seconds_sum", type="order.placed"),
        "batches": lambda: sample("orderflow_ingress_batch_seconds_count"),
    }
    # When it is recorded
    changed = deltas(reads, lambda: metrics.record_ingress_batch(outcomes, timings, 0.01))
    # Then every count moved by exactly its number; a run is one observation, per envelope
    expected = {"applied": 3, "duplicate": 1, "parked": 1, "bad_unknown": 1, "bad_placed": 1,
                "not_json": 1, "runs": 1, "run_sum": 0.001, "batches": 1}  # fmt: skip
    assert changed == pytest.approx(expected)


def test_free_text_and_too_many_values_become_other() -> None:
    label = metrics.BoundedLabel(limit=2)
    assert [label(v) for v in ("a_code", "b.code", "c_code", "a_code")] == [
        "a_code",
        "b.code",
        "other",
        "a_code",
    ]
    assert [label(v) for v in ("Not a code!", "", None)] == ["other", "unknown", "unknown"]


def test_an_outbox_job_is_counted_under_its_name_with_its_fields_on_the_lines() -> None:
    # Given a runner that sees the job's row, and one that fails with a retryable error
    seen: list[dict[str, Any]] = []

    def run(outbox_id: int, started: Started) -> RunResult:
        started("notification.send", f"notify:{outbox_id}")
        seen.append(dict(log_context.current()))
        return RunResult("done")

    def failing(outbox_id: int, started: Started) -> RunResult:
        started("notification.send", f"notify:{outbox_id}")
        raise RuntimeError("smtp down")

    scope = log_context.enter({"job_id": 41})
    done = "orderflow_jobs_total"
    reads = {
        "done": lambda: sample(done, job="notification.send", outcome="done"),
        "retried": lambda: sample(done, job="notification.send", outcome="retried"),
        "timed": lambda: sample("orderflow_job_seconds_count", job="notification.send"),
    }

    def both() -> None:
        observed(run)(41)
        with pytest.raises(RuntimeError):
            observed(failing)(41)

    # When both are delivered
    changed = deltas(reads, both)
    log_context.leave(scope)
    # Then each is counted and timed once, and lines meanwhile carried the job's fields
    assert changed == {"done": 1, "retried": 1, "timed": 2}
    assert seen == [{"job_id": 41, "job": "notification.send", "correlation_id": "notify:41"}]


class FakeMessage:
    """What the middleware reads of a dramatiq message."""

    queue_name = "notifications"
    args = (41,)


def test_the_job_middleware_opens_a_scope_per_message_and_closes_it_after() -> None:
    # Given the middleware
    middleware = JobLogContext()
    broker: Any = None
    # When a message is processed, its job adding fields, then finished
    middleware.before_process_message(broker, FakeMessage())
    log_context.add(job="notification.send")
    during = dict(log_context.current())
    middleware.after_process_message(broker, FakeMessage(), exception=RuntimeError("x"))
    # Then the fields were there during, and nothing is left after
    assert during == {"queue": "notifications", "job_id": 41, "job": "notification.send"}
    assert dict(log_context.current()) == {}


def test_periodic_jobs_are_counted_and_the_last_success_is_stamped() -> None:
    # Given a periodic job that works and one that fails
    def works(_rt: Any, _now: datetime) -> str:
        assert log_context.current()["job"] == "unit_ok"
        return "sent=0"

    def fails(_rt: Any, _now: datetime) -> str:
        raise RuntimeError("database away")

    period = T0 - T0
    ok, bad = observed_jobs([PeriodicJob("unit_ok", period, works),
                             PeriodicJob("unit_bad", period, fails)])  # fmt: skip
    ticks = "orderflow_scheduler_ticks_total"
    reads = {
        "ok": lambda: sample(ticks, job="unit_ok", outcome="ok"),
        "failed": lambda: sample(ticks, job="unit_bad", outcome="failed"),
        "bad_stamp": lambda: sample(
            "orderflow_scheduler_last_success_timestamp_seconds", job="unit_bad"
        ),
    }

    rt: Any = None  # the jobs here need no runtime

    def run_both() -> None:
        assert ok.run(rt, T0) == "sent=0"
        with pytest.raises(RuntimeError):
            bad.run(rt, T0)

    # When each runs once
    changed = deltas(reads, run_both)
    # Then each run is counted; only the success is stamped
    assert changed == {"ok": 1, "failed": 1, "bad_stamp": 0}
    stamp = sample("orderflow_scheduler_last_success_timestamp_seconds", job="unit_ok")
    assert stamp > T0.timestamp()
    assert dict(log_context.current()) == {}


def test_webhook_requests_are_counted_by_status() -> None:
    # Given the webhook app, in process
    app = create_app("whsec_unit", lambda _body: None)

    async def requests() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as c:
            await c.post(PATH, content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
            await c.get(PATH)

    reads = {
        status: partial(sample, "orderflow_webhook_requests_total", status=status)
        for status in ("400", "405")
    }
    # When a badly signed post and a GET arrive
    changed = deltas(reads, lambda: asyncio.run(requests()))
    # Then one 400 and one 405 are counted
    assert changed == {"400": 1, "405": 1}
