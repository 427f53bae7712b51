"""`orderflow demo`: the whole system on embedded defaults, with a readable report."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import redis
from rich.console import Console
from sqlalchemy import ColumnElement, func, select

from models.db.tables import InboxEntry, OutboxJob, ProbeEffect, QuarantinedMessage
from tasks.outbox.jobs import PROBE_JOB
from workers import processes
from workers.demo import report as demo_report
from workers.demo.data import scenario
from workers.demo.smtp_sink import SmtpSink
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM
from workers.runtime import Runtime, open_runtime, prepare_database
from workers.settings import Settings

PROBE_JOBS = 200
WAIT_S = 90.0
DEMO_KEY_ID = "demo"


def _demo_settings(console: Console) -> Settings:
    base = Settings()
    data_dir = (base.data_dir / "demo").resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    console.print(f"[bold]orderflow demo[/] - embedded SQLite and Redis in {data_dir}")
    secret = secrets.token_hex(16)
    return Settings(
        data_dir=data_dir,
        database_url="",
        redis_url="",
        signing_keys=f"{DEMO_KEY_ID}:{secret}",
        _env_file=None,
    )


def _count(rt: Runtime, model: type, *where: ColumnElement[bool]) -> int:
    with rt.db.sessions() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int(session.scalar(query) or 0)


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _publish_scenario(rt: Runtime, settings: Settings) -> list[tuple[str, bytes]]:
    key_id, secret = settings.signing_key_pairs()[0]
    messages = scenario(rt.clock(), key_id, secret)
    client = redis.Redis.from_url(rt.redis_url)
    pipe = client.pipeline(transaction=False)
    for _label, body in messages:
        # Exactly what any producer does: XADD orderflow:ingress * envelope <json>
        pipe.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: body})
    pipe.execute()
    client.close()
    return messages


def _run_probes(rt: Runtime) -> demo_report.ProbeReport:
    started = time.monotonic()
    with rt.new_uow() as uow:
        for index in range(PROBE_JOBS):
            uow.stage(PROBE_JOB, f"demo:probe:{index}", {"key": f"demo:{index}"})
        uow.commit()
    probes_done = (OutboxJob.job == PROBE_JOB.name, OutboxJob.status == "done")
    _wait(lambda: _count(rt, OutboxJob, *probes_done) >= PROBE_JOBS, WAIT_S)
    with rt.db.sessions() as session:
        distinct = session.scalar(select(func.count(func.distinct(ProbeEffect.probe_key)))) or 0
    effects = _count(rt, ProbeEffect)
    return demo_report.ProbeReport(
        staged=PROBE_JOBS,
        done=_count(rt, OutboxJob, *probes_done),
        effects=effects,
        duplicated=effects - int(distinct),
        seconds=time.monotonic() - started,
    )


def run_demo() -> int:
    """Run the demo; 0 when every message had its expected outcome and every job ran once."""
    console = Console()
    settings = _demo_settings(console)
    prepare_database(settings)
    rt = open_runtime(settings)
    env = processes.child_env(
        {
            "ORDERFLOW_DATA_DIR": str(settings.data_dir),
            "ORDERFLOW_REDIS_URL": rt.redis_url,
            "ORDERFLOW_SIGNING_KEYS": settings.signing_keys.get_secret_value(),
        }
    )
    sink = SmtpSink.start()
    env["ORDERFLOW_SMTP_URL"] = sink.url
    logs = Path(settings.data_dir) / "logs"
    started = [
        processes.start("worker", ["worker", "--processes", "1", "--threads", "4"], env, logs),
        processes.start("scheduler", ["scheduler"], env, logs),
    ]
    try:
        messages = _publish_scenario(rt, settings)
        bad = sum(1 for label, _ in messages if label.startswith("bad:"))
        unique = len({body for label, body in messages if not label.startswith("bad:")})
        settled = _wait(
            lambda: _count(rt, InboxEntry) >= unique and _count(rt, QuarantinedMessage) >= bad,
            WAIT_S,
        ) and _wait(
            lambda: len(demo_report.customer_mail(sink.messages)) >= demo_report.EXPECTED_EMAILS,
            WAIT_S,
        )
        probes = _run_probes(rt)
        with rt.db.sessions() as session:
            ok = demo_report.print_report(console, session, messages, probes)
        ok = demo_report.print_mail(console, sink.messages) and ok
    finally:
        for proc in started:
            proc.terminate()
        sink.stop()
        rt.close()
    ok = ok and settled
    console.print("[green]every outcome as expected[/]" if ok else f"[red]problem; see {logs}[/]")
    return 0 if ok else 1
