"""`orderflow demo`: the whole system on embedded defaults, with a readable report."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from models.db.tables import OutboxJob, ProbeEffect
from workers import processes
from workers.runtime import Runtime, open_runtime, prepare_database
from workers.settings import Settings

PROBE_JOBS = 200
WAIT_S = 60.0


@dataclass(frozen=True)
class ProbeReport:
    """How the outbox round trip went."""

    staged: int
    done: int
    effects: int
    duplicated: int
    seconds: float


def _demo_settings(console: Console) -> Settings:
    base = Settings()
    data_dir = (base.data_dir / "demo").resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    console.print(f"[bold]orderflow demo[/] - embedded SQLite and Redis in {data_dir}")
    return Settings(data_dir=data_dir, database_url="", redis_url="")


def _run_probes(rt: Runtime, count: int) -> ProbeReport:
    started = time.monotonic()
    with rt.new_uow() as uow:
        for index in range(count):
            uow.stage("system.probe", f"demo:probe:{index}", {"key": f"demo:{index}"})
        uow.commit()
    done = effects = distinct = 0
    deadline = started + WAIT_S
    while time.monotonic() < deadline:
        with rt.db.sessions() as session:
            done = session.scalar(
                select(func.count()).select_from(OutboxJob).where(OutboxJob.status == "done")
            ) or 0
            effects = session.scalar(select(func.count()).select_from(ProbeEffect)) or 0
            distinct = session.scalar(select(func.count(func.distinct(ProbeEffect.probe_key)))) or 0
        if done >= count:
            break
        time.sleep(0.2)
    return ProbeReport(count, done, effects, effects - distinct, time.monotonic() - started)


def _print(console: Console, report: ProbeReport) -> None:
    table = Table(title="Outbox jobs through real worker and scheduler processes")
    for column in ("staged", "done", "effects", "duplicated", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        str(report.staged),
        str(report.done),
        str(report.effects),
        str(report.duplicated),
        f"{report.seconds:.2f}",
    )
    console.print(table)


def run_demo() -> int:
    """Run the demo; 0 when every effect happened exactly once."""
    console = Console()
    settings = _demo_settings(console)
    prepare_database(settings)
    rt = open_runtime(settings)
    env = processes.child_env(
        {"ORDERFLOW_DATA_DIR": str(settings.data_dir), "ORDERFLOW_REDIS_URL": rt.redis_url}
    )
    logs = Path(settings.data_dir) / "logs"
    started = [
        processes.start("worker", ["worker", "--processes", "1", "--threads", "4"], env, logs),
        processes.start("scheduler", ["scheduler"], env, logs),
    ]
    try:
        report = _run_probes(rt, PROBE_JOBS)
        _print(console, report)
    finally:
        for proc in started:
            proc.terminate()
        rt.close()
    ok = report.done == report.staged == report.effects and report.duplicated == 0
    console.print("[green]all effects exactly once[/]" if ok else f"[red]problem; see {logs}[/]")
    return 0 if ok else 1
