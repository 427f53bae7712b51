"""The scheduler's first periodic jobs: the outbox relay and the outbox reconciler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.db import intake, scheduler_runs
from models.db.outbox import claim_due
from scheduler.host import SchedulerHost
from tasks.deadlines import scan as deadlines
from tasks.payments import holds

RELAY_BATCH = 500
TICKS_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class PeriodicJob:
    """A job the scheduler fires once per period, across all schedulers."""

    name: str
    period: timedelta
    run: Callable[[SchedulerHost, datetime], str]
    # Exclusive jobs claim each tick in the database so only one scheduler fires it; the
    # relay and reconciler need not, because their row claims are already conditional.
    exclusive: bool = False


def _send_due(rt: SchedulerHost, now: datetime, *, first_send: bool) -> str:
    redeliver_after = timedelta(seconds=rt.settings.outbox_redeliver_after_s)
    total = 0
    # Bounded: a huge backlog is worked off over several ticks, not in one long transaction.
    for _ in range(20):
        with rt.new_uow() as uow:
            claimed = claim_due(
                uow.session,
                now,
                first_send=first_send,
                redeliver_after=redeliver_after,
                limit=RELAY_BATCH,
            )
            uow.commit()
        if claimed:
            rt.publish(claimed)
        total += len(claimed)
        if len(claimed) < RELAY_BATCH:
            break
    return f"sent={total}"


def relay_outbox(rt: SchedulerHost, now: datetime) -> str:
    """Send outbox jobs that were committed without being sent."""
    return _send_due(rt, now, first_send=True)


def reconcile_outbox(rt: SchedulerHost, now: datetime) -> str:
    """Re-send jobs sent but not done in time: Redis lost them, or a worker died with them."""
    return _send_due(rt, now, first_send=False)


def expire_parked(rt: SchedulerHost, now: datetime) -> str:
    """Quarantine messages that waited for their order longer than allowed."""
    with rt.new_uow() as uow:
        expired = intake.take_expired_parked(uow.session, now, limit=RELAY_BATCH)
        for parked in expired:
            kind, _, ident = parked.awaits.partition(":")
            detail = f"{kind} {ident} did not arrive in time"
            intake.unpark_to_quarantine(
                uow.session, parked, reason=f"unknown_{kind}", detail=detail, at=now
            )
        uow.commit()
    return f"expired={len(expired)}"


def scan_deadlines(rt: SchedulerHost, now: datetime) -> str:
    """Mark orders past their confirmation deadline and stage each one's failure message."""
    s = rt.settings
    done = deadlines.run_tick(
        rt.new_uow, now, deadlines.mark_overdue, s.deadline_scan_per_tick, s.deadline_scan_batch
    )
    return f"marked={done.taken} messages={done.staged}"


def remind_desk(rt: SchedulerHost, now: datetime) -> str:
    """Email the order desk about orders whose reminder time (a share of the window) came."""
    s = rt.settings
    step = deadlines.reminder_step(s.desk_email)
    done = deadlines.run_tick(
        rt.new_uow, now, step, s.deadline_scan_per_tick, s.deadline_scan_batch
    )
    return f"taken={done.taken} reminded={done.staged}"


def watch_holds(rt: SchedulerHost, now: datetime) -> str:
    """Warn the desk before card holds lapse, mark lapsed ones, learn unknown expiry times."""
    warn = timedelta(hours=rt.settings.hold_warning_h)
    with rt.new_uow() as uow:
        done = holds.watch(uow, now, warn, limit=RELAY_BATCH)
        uow.commit()
    return f"warned={done.warned} expired={done.expired} asked={done.asked}"


def prune_ticks(rt: SchedulerHost, now: datetime) -> str:
    """Forget claimed ticks older than a week (two exclusive jobs claim ~35,000 a day)."""
    with rt.new_uow() as uow:
        pruned = scheduler_runs.prune(uow.session, now - TICKS_KEPT, limit=10 * RELAY_BATCH)
        uow.commit()
    return f"pruned={pruned}"


def default_jobs(tick: timedelta, deadline_scan: timedelta | None = None) -> list[PeriodicJob]:
    """Every periodic job, in the order a tick runs them."""
    scan = max(tick, deadline_scan or tick)
    return [
        PeriodicJob("outbox_relay", tick, relay_outbox),
        PeriodicJob("outbox_reconciler", max(tick, timedelta(seconds=2)), reconcile_outbox),
        PeriodicJob("parking_expiry", max(tick, timedelta(seconds=5)), expire_parked),
        # Exclusive: one scheduler per tick scans. The scans would be exactly-once anyway
        # (row locks and conditional updates); the claim saves the others the work.
        PeriodicJob("confirmation_scan", scan, scan_deadlines, exclusive=True),
        PeriodicJob("desk_reminders", scan, remind_desk, exclusive=True),
        PeriodicJob("tick_pruning", max(tick, timedelta(minutes=1)), prune_ticks),
        PeriodicJob("hold_watch", max(tick, timedelta(seconds=30)), watch_holds, exclusive=True),
    ]
