"""The scheduler process: fire each periodic job once per tick until told to stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime

from models.db import scheduler_runs
from models.db.machinery import SchedulerRun
from models.db.sql import insert_ignore
from scheduler import heartbeat
from scheduler.host import SchedulerHost
from scheduler.jobs import PeriodicJob
from scheduler.ticks import tick_for

log = logging.getLogger("orderflow.scheduler")


def scheduler_identity() -> str:
    """Who holds a tick: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_tick(rt: SchedulerHost, job: PeriodicJob, tick: datetime, owner: str) -> bool:
    """Record that `owner` fires `job` at `tick`; False when another scheduler already did."""
    with rt.new_uow() as uow:
        row = {"job": job.name, "tick": tick, "owner": owner, "started_at": rt.clock()}
        won = insert_ignore(uow.session, SchedulerRun, row, ["job", "tick"]) is not None
        uow.commit()
        return won


def run_once(
    rt: SchedulerHost, jobs: list[PeriodicJob], last: dict[str, datetime], owner: str
) -> None:
    """One pass: fire every job whose tick has moved on since it last ran here."""
    runs: list[heartbeat.JobRun] = []
    for job in jobs:
        now = rt.clock()
        tick = tick_for(now, job.period)
        if last.get(job.name) == tick:
            continue
        last[job.name] = tick
        if job.exclusive and not claim_tick(rt, job, tick, owner):
            continue
        try:
            outcome = job.run(rt, now)
            if job.exclusive:
                finish_tick(rt, job, tick, outcome)
        except Exception:
            # One failing job must not stop the others; it runs again next tick.
            log.exception("scheduler job %s failed", job.name)
            continue
        log.debug("scheduler job %s: %s", job.name, outcome)
        runs.append(
            heartbeat.JobRun(job.name, rt.clock(), job.period.total_seconds(), owner, outcome)
        )
    _record_runs(rt, runs)


def _record_runs(rt: SchedulerHost, runs: list[heartbeat.JobRun]) -> None:
    """Tell `orderflow status` which jobs ran; Redis being away must not stop the jobs."""
    try:
        heartbeat.record(rt.redis_client, runs)
    except Exception as error:  # noqa: BLE001 - liveness only; the next pass records again
        log.warning("could not record scheduler runs: %s", type(error).__name__)


def finish_tick(rt: SchedulerHost, job: PeriodicJob, tick: datetime, outcome: str) -> None:
    """Record how a claimed tick ended (visible in the database, e.g. to find a scan cut short)."""
    with rt.new_uow() as uow:
        scheduler_runs.finish(uow.session, job.name, tick, rt.clock(), outcome)
        uow.commit()


def run_scheduler(rt: SchedulerHost, jobs: list[PeriodicJob], stop: threading.Event) -> None:
    """Loop until `stop` is set (SIGTERM/SIGINT in the CLI)."""
    owner = scheduler_identity()
    last: dict[str, datetime] = {}
    log.info("scheduler started as %s with jobs %s", owner, [job.name for job in jobs])
    while not stop.is_set():
        run_once(rt, jobs, last, owner)
        stop.wait(rt.settings.scheduler_tick_s)
    log.info("scheduler stopped")
