"""The soak's bed: a real stack (PostgreSQL, Redis, `orderflow worker` and `orderflow scheduler`
processes) wired to the Stripe fake and the SMTP sink; waves published as producers publish
(`orderflow publish` and raw XADD), each applied and settled before the next."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from models.db.machinery import (
    InboxEntry,
    Notification,
    OutboxJob,
    ParkedMessage,
    QuarantinedMessage,
)
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.fakes.stripe_server import StripeFake
from tests.soak.observe import EgressFollower, observe
from tests.soak.oracle import Verdict, judge
from tests.soak.story import Day, Item
from tests.support import wait_until
from workers import processes
from workers.demo.smtp_sink import SmtpSink
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM

API_KEY = "sk_test_story_soak_20"
SETTINGS: dict[str, Any] = {
    "signing_keys": f.SIGNING_KEYS_SETTING, "stripe_api_key": API_KEY, "stripe_timeout_s": 1.0,
    "outbox_redeliver_after_s": 15, "ingress_claim_idle_s": 10, "scheduler_tick_s": 0.5,
}  # fmt: skip
WAVE_S = 300.0  # bound on one wave's settling
POLL_S = 0.5
GRACE_S = 3.0  # after the last wave: time for a late duplicate to show
OnTick = Callable[[int, float], None]
OnPublished = Callable[[int, float], None]


@dataclass
class Soak:
    """One soak run: its stack, fakes, the egress follower and the day being published."""

    stack: Stack
    fake: StripeFake
    sink: SmtpSink
    egress: EgressFollower
    pg_log: Path
    pg_offset: int
    day: Day | None = None
    workers: list[processes.OrderflowProcess] = field(default_factory=list)
    seconds: float = 0.0
    waves_s: list[float] = field(default_factory=list)

    @classmethod
    def wire(cls, stack: Stack, fake: StripeFake, sink: SmtpSink, egress: EgressFollower,
             pg_log: Path) -> Soak:  # fmt: skip
        stack.env["ORDERFLOW_STRIPE_API_BASE"] = fake.base_url
        stack.env["ORDERFLOW_SMTP_URL"] = sink.url
        return cls(stack, fake, sink, egress, pg_log, pg_log.stat().st_size)

    def start(self, workers: int, processes_: int, schedulers: int) -> None:
        """`workers` x `orderflow worker --processes processes_` (2 ingress consumers each) and
        `schedulers` schedulers; returns when every worker process is consuming."""
        for index in range(schedulers):
            self.stack.start(f"scheduler-{index}", "scheduler")
        for index in range(workers):
            args = ["worker", "--processes", str(processes_), "--threads", "4"]
            self.workers.append(self.stack.start(f"worker-{index}", *args))
        for proc in self.workers:
            assert _ready(proc, processes_), proc.log_text()[-3000:]

    def publish(self, items: list[Item]) -> None:
        """Raw XADD for the envelopes whose story chose it (and all raw bytes), then one
        `orderflow publish` for the others."""
        self._xadd([i.body for i in items if i.path == "xadd" or isinstance(i.body, bytes)])
        self._orderflow_publish([i.body for i in items if i.path == "publish"
                                 and isinstance(i.body, dict)])  # fmt: skip

    def xadd_in_order(self, items: list[Item]) -> None:
        """Every item by raw XADD, in the order given (one pipeline), whatever path its story
        chose: a producer that sends the lot at once."""
        self._xadd([i.body for i in items])

    def _xadd(self, bodies: list[dict[str, Any] | bytes]) -> None:
        client: Any = redis.Redis.from_url(self.stack.settings.redis_url)
        pipe = client.pipeline(transaction=False)
        for body in bodies:  # the documented command: XADD orderflow:ingress * envelope <json>
            raw = body if isinstance(body, bytes) else f.body(body)
            pipe.execute_command("XADD", INGRESS_STREAM, "*", ENVELOPE_FIELD, raw)
        pipe.execute()
        client.close()

    def _orderflow_publish(self, envelopes: list[dict[str, Any]]) -> None:
        if not envelopes:
            return
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as out:
            out.write("".join(json.dumps(e) + "\n" for e in envelopes))
        done = subprocess.run([sys.executable, "-m", "workers", "publish", out.name],
                              env=self.stack.env, capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip
        Path(out.name).unlink()
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"published {len(envelopes)} envelopes" in done.stdout, done.stdout

    def republish(self, wave: int) -> None:
        """Send again, by XADD, every envelope of waves up to `wave` not yet received, and all
        bad input (the same bytes: quarantined once)."""
        assert self.day is not None
        missing = self.pending_ids(wave)
        self._xadd([i.body for w in self.day.waves[: wave + 1] for i in w
                    if isinstance(i.body, bytes) or str(i.body["id"]) in missing])  # fmt: skip

    def pending_ids(self, wave: int) -> set[str]:
        """Envelope ids of waves up to `wave` neither in the inbox nor quarantined yet."""
        assert self.day is not None
        wanted = {str(i.body["id"]) for w in self.day.waves[: wave + 1] for i in w
                  if isinstance(i.body, dict)}  # fmt: skip
        with self.stack.rt.db.sessions() as session:
            seen = set(session.scalars(select(InboxEntry.envelope_id)))
            seen |= set(session.scalars(select(QuarantinedMessage.envelope_id)))
        return wanted - seen

    def settled(self, wave: int) -> bool:
        """Every envelope applied, parked as planned or quarantined; no job or email pending."""
        assert self.day is not None
        try:
            with redis.Redis.from_url(self.stack.settings.redis_url) as client:
                if client.xlen(INGRESS_STREAM):
                    return False
            if self.pending_ids(wave):
                return False
            return (self._count(ParkedMessage), self._count(OutboxJob, OutboxJob.status ==
                    "pending"), self._count(Notification, Notification.status == "pending")) == (
                    self.day.parked_after[wave], 0, 0)  # fmt: skip
        except (redis.RedisError, SQLAlchemyError):
            return False  # a server restarting: ask again

    def _count(self, model: type, *where: Any) -> int:
        with self.stack.rt.db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def run(self, day: Day, on_tick: OnTick | None = None,
            on_published: OnPublished | None = None) -> None:  # fmt: skip
        """Publish each wave, then poll (bounded) until it has settled; `on_tick(wave, s)`
        may do harm meanwhile; `on_published(wave, began)` is called once the wave is
        published (`began`: `time.monotonic()` before its first publish), e.g. to time it."""
        self.day = day
        started = time.monotonic()
        for wave, items in enumerate(day.waves):
            began = time.monotonic()
            self.publish(items)
            if on_published is not None:
                on_published(wave, began)
            deadline = began + WAVE_S
            for _ in range(int(WAVE_S / POLL_S) + 1):
                if on_tick is not None:
                    on_tick(wave, time.monotonic() - began)
                if self.settled(wave) or time.monotonic() > deadline:
                    break
                time.sleep(POLL_S)
            assert self.settled(wave), f"wave {wave} did not settle: {self.progress(wave)}"
            self.waves_s.append(time.monotonic() - began)
        self.seconds = time.monotonic() - started
        time.sleep(GRACE_S)

    def progress(self, wave: int) -> str:
        with contextlib.suppress(Exception):
            query = select(OutboxJob.job, func.count()).where(OutboxJob.status == "pending")
            with self.stack.rt.db.sessions() as session:
                jobs = session.execute(query.group_by(OutboxJob.job)).all()
            return (f"unapplied={len(self.pending_ids(wave))} parked={self._count(ParkedMessage)}"
                    f" pending_jobs={jobs} pending_mail="
                    f"{self._count(Notification, Notification.status == 'pending')}")  # fmt: skip
        return "unknown (a server is down)"

    def verdict(self) -> Verdict:
        assert self.day is not None
        seen = observe(self.stack.rt.db, self.fake, self.sink, self.egress, log=self.pg_log,
                       offset=self.pg_offset)  # fmt: skip
        return judge(self.day.expect, seen)

    def kill_worker_process(self) -> int:
        """SIGKILL one process under the first worker's supervisor (it restarts it)."""
        for child in sorted(psutil.Process(self.workers[0].pid).children(), key=_pid):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                if "spawn_main" in " ".join(child.cmdline()):  # not the resource tracker
                    child.kill()
                    return int(child.pid)
        raise AssertionError("no worker process to kill")

    def summary(self, variant: str) -> str:
        assert self.day is not None
        rate = self.day.envelopes / self.seconds if self.seconds else 0.0
        waves = "/".join(f"{s:.0f}" for s in self.waves_s)
        return (f"soak {variant}: seed={self.day.seed} orders={len(self.day.roles)} "
                f"envelopes={self.day.envelopes} seconds={self.seconds:.1f} "
                f"envelopes_per_s={rate:.0f} waves_s={waves}")  # fmt: skip


def _ready(proc: processes.OrderflowProcess, count: int) -> bool:
    return wait_until(lambda: proc.log_text().count(" ready: ") >= count, 120)


def _pid(process: psutil.Process) -> int:
    return int(process.pid)
