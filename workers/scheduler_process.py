"""`orderflow scheduler`: the periodic-job loop as a process that stops cleanly on SIGTERM."""

from __future__ import annotations

from datetime import timedelta

from scheduler.jobs import default_jobs
from scheduler.loop import run_scheduler
from workers.http import metrics_server
from workers.logs import configure_logging
from workers.runtime import open_runtime, prepare_database
from workers.scheduler_jobs import observed_jobs
from workers.settings import Settings
from workers.signals import stop_event_on_signals


def run(log_level: str = "INFO") -> None:
    """Run the scheduler until SIGTERM/SIGINT."""
    settings = Settings()
    configure_logging(log_level, settings.log_format)
    stop = stop_event_on_signals()
    prepare_database(settings)
    rt = open_runtime(settings)
    server = metrics_server.serve(settings)
    try:
        jobs = default_jobs(
            timedelta(seconds=settings.scheduler_tick_s),
            timedelta(seconds=settings.deadline_scan_s),
        )
        run_scheduler(rt, observed_jobs(jobs), stop)
    finally:
        if server is not None:
            server.close()
        rt.close()
