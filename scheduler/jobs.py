"""The scheduler's first periodic jobs: the outbox relay and the outbox reconciler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.db import intake
from models.db.outbox import claim_due
from workers.runtime import Runtime

RELAY_BATCH = 500


@dataclass(frozen=True)
class PeriodicJob:
    """A job the scheduler fires once per period, across all schedulers."""

    name: str
    period: timedelta
    run: Callable[[Runtime, datetime], str]
    # Exclusive jobs claim each tick in the database so only one scheduler fires it; the
    # relay and reconciler need not, because their row claims are already conditional.
    exclusive: bool = False


def _send_due(rt: Runtime, now: datetime, *, first_send: bool) -> str:
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


def relay_outbox(rt: Runtime, now: datetime) -> str:
    """Send outbox jobs that were committed without being sent."""
    return _send_due(rt, now, first_send=True)


def reconcile_outbox(rt: Runtime, now: datetime) -> str:
    """Re-send jobs sent but not done in time: Redis lost them, or a worker died with them."""
    return _send_due(rt, now, first_send=False)


def expire_parked(rt: Runtime, now: datetime) -> str:
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


def default_jobs(tick: timedelta) -> list[PeriodicJob]:
    """Every periodic job, in the order a tick runs them."""
    return [
        PeriodicJob("outbox_relay", tick, relay_outbox),
        PeriodicJob("outbox_reconciler", max(tick, timedelta(seconds=2)), reconcile_outbox),
        PeriodicJob("parking_expiry", max(tick, timedelta(seconds=5)), expire_parked),
    ]
