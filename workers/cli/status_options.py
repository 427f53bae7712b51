"""What `orderflow status` looks at and when it calls for a person: horizons and thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple


class ScheduledJob(NamedTuple):
    """A periodic job of the scheduler, as status judges its liveness."""

    name: str
    period_s: float
    exclusive: bool


@dataclass(frozen=True)
class StatusOptions:
    """Horizons, thresholds and list lengths of the report (defaults documented in
    docs/operations.md, "What orderflow status checks")."""

    soon: timedelta = timedelta(hours=24)  # confirmations due within this are "due soon"
    limit: int = 50  # list at most this many items of each kind
    stuck: timedelta = timedelta(minutes=15)  # a Stripe operation or outbox job open this long
    waiting: timedelta = timedelta(minutes=5)  # a queued message or ingress entry this old
    hold_warning: timedelta = timedelta(hours=24)  # a card hold lapsing within this
    stale_floor: timedelta = timedelta(seconds=30)  # a job is late after max(3 periods, this)
    jobs: tuple[ScheduledJob, ...] = ()


def iso(value: datetime | None) -> str | None:
    """ISO-8601 with offset, or None."""
    return value.isoformat() if value else None


def age_s(now: datetime, then: datetime | None) -> float | None:
    """Seconds from `then` to `now` (rounded to milliseconds), or None."""
    return None if then is None else round((now - then).total_seconds(), 3)
