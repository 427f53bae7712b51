"""Periodic jobs with their metrics and log scope: each run is counted and timed, and the lines
it logs carry the job's name."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from scheduler.host import SchedulerHost
from scheduler.jobs import PeriodicJob
from tasks import log_context
from workers import metrics

RunJob = Callable[[SchedulerHost, datetime], str]


def observed_jobs(jobs: Sequence[PeriodicJob]) -> list[PeriodicJob]:
    """The same jobs, each run counted, timed and logged under its name."""
    return [replace(job, run=_observed(job.name, job.run)) for job in jobs]


def _observed(name: str, run: RunJob) -> RunJob:
    def observed_run(rt: SchedulerHost, now: datetime) -> str:
        token = log_context.enter({"job": name})
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = run(rt, now)
            outcome = "ok"
            return result
        finally:
            metrics.record_scheduler(name, outcome, time.perf_counter() - started)
            log_context.leave(token)

    return observed_run
