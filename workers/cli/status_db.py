"""`orderflow status` sections read from the database: quarantine and parking, Stripe operations
not settled yet, card holds about to lapse, and the outbox backlog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models.db import status_queries as q
from models.db.status_queries import counts_by_reason
from workers.cli.status_options import StatusOptions, age_s, iso


def quarantine(session: Session, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """Held quarantine records by reason, and messages parked waiting for their order."""
    del now, options
    by_reason = dict(sorted(counts_by_reason(session).items()))
    parked, next_expiry = q.parked_summary(session)
    return {
        "held": sum(by_reason.values()),
        "by_reason": by_reason,
        "parked": parked,
        "parked_next_expiry": iso(next_expiry),
    }


def captures(session: Session, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """Stripe operations (capture, cancel, refund) not settled yet: counts per kind and status,
    the ones open longer than `stuck` with their last error, and the failed captures."""
    before = now - options.stuck
    counts = [
        {
            "kind": c.kind,
            "status": c.status,
            "count": c.open,
            "oldest_created_at": iso(c.oldest_created_at),
        }
        for c in q.unsettled_operations(session)
    ]
    stuck = [
        {
            "number": o.number,
            "kind": o.kind,
            "status": o.status,
            "attempts": o.attempts,
            "created_at": iso(o.created_at),
            "age_s": age_s(now, o.created_at),
            "last_error": o.last_error,
        }
        for o in q.open_operations(session, before, options.limit)
    ]
    failed = [
        {"number": c.number, "reason": c.reason, "since": iso(c.since)}
        for c in q.failed_captures(session, options.limit)
    ]
    return {
        "stuck_after_minutes": options.stuck.total_seconds() / 60,
        "unsettled": counts,
        "stuck": q.count_open_operations(session, before),
        "oldest_stuck": stuck,
        "failed": q.count_failed_captures(session),
        "failed_orders": failed,
    }


def holds(session: Session, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """Card holds still uncaptured that lapse within the warning window (or lapsed, not yet
    marked by the hold watch), soonest first."""
    until = now + options.hold_warning
    listed = [
        {
            "number": h.number,
            "capture_before": iso(h.capture_before),
            "hours_left": round((h.capture_before - now).total_seconds() / 3600, 2),
            "fulfillment_status": h.fulfillment_status,
            "total": h.total,
            "currency": h.currency,
        }
        for h in q.expiring_holds(session, until, options.limit)
    ]
    return {
        "warning_hours": options.hold_warning.total_seconds() / 3600,
        "expiring": q.count_expiring_holds(session, until),
        "orders": listed,
    }


def outbox(session: Session, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """Jobs committed and not done yet, per job; the oldest; those older than `stuck`; and how
    many failed for good (their reasons are in `orderflow order show` and the exports)."""
    backlog = q.outbox_backlog(session, now - options.stuck)
    return {
        "pending": sum(backlog.pending_by_job.values()),
        "by_job": backlog.pending_by_job,
        "oldest_created_at": iso(backlog.oldest_created_at),
        "oldest_age_s": age_s(now, backlog.oldest_created_at),
        "stuck_after_minutes": options.stuck.total_seconds() / 60,
        "stuck": backlog.stuck,
        "failed": backlog.failed,
    }
