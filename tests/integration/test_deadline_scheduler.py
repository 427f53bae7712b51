"""The confirmation scan as the scheduler runs it: one scheduler per tick scans, the tick records
how it ended, and clock jumps catch up (forward) or fire nothing early (backward)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models.db.tables import Order, SchedulerRun
from models.db.uow import StagedJob
from scheduler.jobs import PeriodicJob, default_jobs, prune_ticks
from scheduler.loop import run_once
from tests import factories as f
from tests.support import feed, migrated
from workers.runtime import Runtime, open_runtime
from workers.settings import Settings

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
SUNDAY_DUE = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # orders placed on Sunday: Monday's close
TUESDAY_DUE = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # orders placed at T0


class Clocked:
    """A runtime whose clock the test sets, and whose published jobs it keeps."""

    def __init__(self, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rt, self.now, self.published = rt, T0, list[StagedJob]()
        monkeypatch.setattr(rt, "clock", lambda: self.now)
        monkeypatch.setattr(rt, "publish", self.published.extend)


@pytest.fixture
def clocked(db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clocked]:
    migrated(db_url).dispose()
    settings = Settings(database_url=db_url, redis_url=redis_url, deadline_scan_per_tick=3,
                        deadline_scan_batch=2, _env_file=None)  # fmt: skip
    rt = open_runtime(settings)
    yield Clocked(rt, monkeypatch)
    rt.close()


def _scan_job() -> list[PeriodicJob]:
    return [j for j in default_jobs(timedelta(seconds=1), timedelta(seconds=5))
            if j.name == "confirmation_scan"]  # fmt: skip


def _runs(rt: Runtime) -> list[tuple[datetime, str, str | None]]:
    with rt.db.sessions() as session:
        query = select(SchedulerRun.tick, SchedulerRun.owner, SchedulerRun.outcome)
        rows = session.execute(
            query.where(SchedulerRun.job == "confirmation_scan").order_by(SchedulerRun.id)
        )
        return [(tick, owner, outcome) for tick, owner, outcome in rows.all()]


def _overdue(rt: Runtime) -> int:
    with rt.db.sessions() as session:
        return len(session.scalars(select(Order.id).where(Order.confirmation_overdue)).all())


def test_two_schedulers_on_one_tick_scan_once_and_record_the_outcome(clocked: Clocked) -> None:
    # Given three orders past their deadline, and a clock at Monday's close plus a minute
    place = (T0 - timedelta(days=1)).isoformat()
    bodies = [f.manufacturer(), *(f.order(f"S{i}", placed_at=place) for i in range(3))]
    feed(clocked.rt.db, [f.body(b) for b in bodies], f.policy(), T0)
    clocked.now = SUNDAY_DUE + timedelta(minutes=1)
    # When two schedulers fire the scan in the same tick (the rate limit is 3 per tick)
    run_once(clocked.rt, _scan_job(), {}, "host-a:1")
    run_once(clocked.rt, _scan_job(), {}, "host-b:2")
    # Then only the first scanned, and the tick says what it did
    assert _runs(clocked.rt) == [(SUNDAY_DUE + timedelta(minutes=1), "host-a:1",
                                  "marked=3 messages=6")]  # fmt: skip
    assert _overdue(clocked.rt) == 3
    assert sorted(job.job for job in clocked.published) == (
        ["egress.publish"] * 3 + ["notification.send"] * 3 + ["notification.webhook"] * 3
    )


def test_clock_jumps_catch_up_forward_rate_limited_and_fire_nothing_early_backward(
    clocked: Clocked,
) -> None:
    # Given five orders due Tuesday's close and a scheduler that ran on Monday
    bodies = [f.manufacturer(), *(f.order(f"M{i}", placed_at=T0.isoformat()) for i in range(5))]
    feed(clocked.rt.db, [f.body(b) for b in bodies], f.policy(), T0)
    last: dict[str, datetime] = {}
    run_once(clocked.rt, _scan_job(), last, "host-a:1")
    # When the clock jumps 25 hours forward past the deadline, then on by the scan period
    clocked.now = TUESDAY_DUE + timedelta(hours=25)
    run_once(clocked.rt, _scan_job(), last, "host-a:1")
    first = _overdue(clocked.rt)
    clocked.now += timedelta(seconds=5)
    run_once(clocked.rt, _scan_job(), last, "host-a:1")
    # Then the backlog is worked off three per tick, each order once
    assert (first, _overdue(clocked.rt)) == (3, 5)
    # And when the clock then jumps back 25 hours, to before the deadline, nothing fires early
    clocked.now = TUESDAY_DUE + timedelta(seconds=10) - timedelta(hours=25)
    run_once(clocked.rt, _scan_job(), last, "host-a:1")
    outcomes = [outcome for _, _, outcome in _runs(clocked.rt)]
    assert outcomes == ["marked=0 messages=0", "marked=3 messages=6", "marked=2 messages=4",
                        "marked=0 messages=0"]  # fmt: skip
    assert len(clocked.published) == 15


def test_claimed_ticks_older_than_a_week_are_forgotten(clocked: Clocked) -> None:
    # Given scans claimed eight days ago, six days ago and now
    for age in (timedelta(days=8), timedelta(days=6), timedelta(0)):
        clocked.now = T0 - age
        run_once(clocked.rt, _scan_job(), {}, "host-a:1")
    # When the pruning job runs
    outcome = prune_ticks(clocked.rt, T0)
    # Then only the tick older than a week is gone
    assert outcome == "pruned=1"
    assert [tick for tick, _, _ in _runs(clocked.rt)] == [T0 - timedelta(days=6), T0]
