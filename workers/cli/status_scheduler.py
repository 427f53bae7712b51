"""The `scheduler` section of `orderflow status`: each periodic job's last run, from the runs the
schedulers record in Redis and, for exclusive jobs, the ticks they claim in the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from scheduler.heartbeat import JobRun
from scheduler.jobs import default_jobs
from workers.cli.status_options import ScheduledJob, StatusOptions, age_s, iso
from workers.settings import Settings


def scheduled_jobs(settings: Settings) -> tuple[ScheduledJob, ...]:
    """The jobs a scheduler with these settings runs, with their periods."""
    jobs = default_jobs(
        timedelta(seconds=settings.scheduler_tick_s), timedelta(seconds=settings.deadline_scan_s)
    )
    return tuple(ScheduledJob(j.name, j.period.total_seconds(), j.exclusive) for j in jobs)


def stale_after_s(period_s: float, options: StatusOptions) -> float:
    """How long a job may go without a run before it is late: three periods, at least the floor
    (a 1 s job would otherwise be late after any pause of a few seconds)."""
    return max(3 * period_s, options.stale_floor.total_seconds())


def _job(
    job: ScheduledJob,
    run: JobRun | None,
    claimed: datetime | None,
    now: datetime,
    options: StatusOptions,
) -> dict[str, Any]:
    period = run.period_s if run else job.period_s  # the scheduler's own, when it said
    last = max((t for t in (run.at if run else None, claimed) if t is not None), default=None)
    stale_after = stale_after_s(period, options)
    age = age_s(now, last)
    return {
        "job": job.name,
        "period_s": period,
        "exclusive": job.exclusive,
        "last_run_at": iso(last),
        "age_s": age,
        "owner": run.owner if run else None,
        "outcome": run.outcome if run else None,
        "stale_after_s": stale_after,
        "stale": age is None or age > stale_after,
    }


def scheduler(
    runs: dict[str, JobRun] | None,
    claimed: dict[str, datetime] | None,
    now: datetime,
    options: StatusOptions,
) -> dict[str, Any]:
    """Per job: when it last ran (newest of the recorded run and the claimed tick), by whom, and
    whether it is late. `runs` is None when Redis could not be read: only exclusive jobs, whose
    claims are in the database, can then be judged; the others show `stale: null`."""
    listed = []
    for job in options.jobs:
        entry = _job(job, (runs or {}).get(job.name), (claimed or {}).get(job.name), now, options)
        known = (runs is not None) or (job.exclusive and claimed is not None)
        if not known:
            entry["stale"] = None
        listed.append(entry)
    return {"jobs": listed}
