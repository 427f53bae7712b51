"""The bed of the capture chaos tests: the Stripe fake wired into a real stack, card orders placed
(set-up, in this process) and shipped through the ingress stream as a producer would, worker
processes killed, effects counted at the fake."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil
import redis
from sqlalchemy import func, select, update

from models.db.commerce import Order
from models.db.machinery import ExternalOperation, OutboxJob
from tasks.payments.running import operation_ids
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.fakes.stripe_model import HOLD_SECONDS
from tests.fakes.stripe_server import StripeFake
from tests.support import feed, now, wait_until
from workers import processes
from workers.queue import client as producer

API_KEY = "sk_test_chaos_capture_7"
TOTAL = 25_800  # the sample order: 2 x 12,900 and a free leaflet
CAPTURE = ("POST", "/v1/payment_intents/{id}/capture")
SETTINGS: dict[str, Any] = {
    "signing_keys": f.SIGNING_KEYS_SETTING, "stripe_api_key": API_KEY, "stripe_timeout_s": 1.0,
    # A killed process's jobs come back from dramatiq after the heartbeat timeout (10 s) and its
    # ingress entries after 10 s. The reconciler re-sends every job not done in time, queued
    # ones too: below the time a 2,000-job backlog takes to drain, that doubles the work.
    "outbox_redeliver_after_s": 20, "ingress_claim_idle_s": 10, "scheduler_tick_s": 0.5,
}  # fmt: skip
# Twenty orders make no backlog: jobs lost before they reached Redis are re-sent within seconds.
CRASH_SETTINGS = {**SETTINGS, "outbox_redeliver_after_s": 3}
# Emails are not what these tests count and no SMTP server is configured: the notifications
# queue is left unconsumed rather than retried thousands of times on two cores.
QUEUES = ("default", "payments")
POLL_S = 0.2
PLACE_BATCH = 500


@dataclass(frozen=True)
class Tally:
    """What the fake saw, judged against what was shipped."""

    attempted: int  # orders shipped
    effects: int  # capture effects at the fake
    lost: int  # shipped orders with a live hold and no capture
    duplicated: int  # capture effects beyond one per PaymentIntent

    def line(self) -> str:
        return (f"attempted={self.attempted} effects={self.effects} lost={self.lost} "
                f"duplicated={self.duplicated}")  # fmt: skip


@dataclass
class CaptureBed:
    """A stack whose processes talk to `fake`; the card orders placed so far."""

    stack: Stack
    fake: StripeFake
    client: redis.Redis
    intents: dict[str, str] = field(default_factory=dict)  # order number -> PaymentIntent
    lapsed: set[str] = field(default_factory=set)  # orders whose hold lapsed before shipping
    worker_proc: processes.OrderflowProcess | None = None
    _processes: int = 0

    @classmethod
    def wire(cls, stack: Stack, fake: StripeFake) -> CaptureBed:
        """Point the processes this stack starts at `fake` (its port is known only now)."""
        stack.env["ORDERFLOW_STRIPE_API_BASE"] = fake.base_url
        return cls(stack, fake, redis.Redis.from_url(stack.settings.redis_url))

    def envelopes(self, count: int, *, lapsed: int = 0) -> list[dict[str, Any]]:
        """`count` card orders with authorized intents; the last `lapsed` of them lapsed."""
        placed_at = datetime.now(UTC).isoformat()  # now: no confirmation deadline passes
        lapsed_at = self.fake.clock.now() - 3600
        out = []
        for seq in range(count):
            number = f"CX{seq:05d}"
            gone = seq >= count - lapsed
            pi_id = self.fake.create_authorized_intent(
                TOTAL, "eur", capture_before=lapsed_at if gone else None
            )
            self.intents[number] = pi_id
            if gone:
                self.lapsed.add(number)
            out.append(f.order(number, stripe_payment_intent_id=pi_id, placed_at=placed_at))
        return out

    def place(self, count: int, *, lapsed: int = 0, hold_known: bool = False) -> None:
        """Place `count` orders through the ingress code, in this process (set-up, not under
        test); `hold_known` stores each hold's expiry as if the hold watch had learned it."""
        bodies = [f.body(e) for e in (f.manufacturer(), *self.envelopes(count, lapsed=lapsed))]
        for start in range(0, len(bodies), PLACE_BATCH):
            outcomes = feed(
                self.stack.rt.db, bodies[start : start + PLACE_BATCH], f.policy(), now()
            )
            assert {o.result for o in outcomes} == {"applied"}, outcomes[:3]
        if hold_known:
            expiry = datetime.fromtimestamp(self.fake.clock.now() + HOLD_SECONDS, tz=UTC)
            with self.stack.rt.db.sessions() as session, session.begin():
                session.execute(update(Order).values(capture_before=expiry))

    def shipments(self) -> list[dict[str, Any]]:
        """One signed `order.shipped` per order (no customer email: SMTP is not counted)."""
        return [f.envelope("order.shipped", number=n, tracking_numbers=[f"TRK-{n}"],
                           notify_customer=False) for n in self.intents]  # fmt: skip

    def ship(self, envelopes: list[dict[str, Any]]) -> None:
        producer.publish(self.client, envelopes)

    def start(self, processes_: int = 2, threads: int = 6, **env: str) -> None:
        """Start a scheduler and `orderflow worker` (extra env, e.g. a crash point); boots take
        seconds here, so the caller sets up meanwhile and then calls `wait_ready`."""
        self.stack.start("scheduler", "scheduler")
        args = ["worker", "--processes", str(processes_), "--threads", str(threads)]
        args += [arg for queue in QUEUES for arg in ("--queue", queue)]
        proc = processes.start("worker", args, {**self.stack.env, **env}, self.stack.logs)
        self.stack.started.append(proc)
        self.worker_proc, self._processes = proc, processes_

    def wait_ready(self) -> None:
        """Wait until every worker process is consuming."""
        proc = self.worker_proc
        assert proc is not None
        ready = wait_until(lambda: proc.log_text().count(" ready: ") >= self._processes, 120)
        assert ready, proc.log_text()[-3000:]

    def kill_child(self) -> int:
        """SIGKILL one worker process under the supervisor (which restarts it); its pid."""
        assert self.worker_proc is not None
        for child in sorted(psutil.Process(self.worker_proc.pid).children(), key=_pid):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                if "spawn_main" in " ".join(child.cmdline()):  # not the resource tracker
                    child.kill()
                    return int(child.pid)
        raise AssertionError("no worker process to kill")

    def count(self, model: type, *where: Any) -> int:
        with self.stack.rt.db.sessions() as session:
            query = select(func.count()).select_from(model).where(*where)
            return int(session.scalar(query) or 0)

    def settled(self) -> bool:
        """Every live order paid and every lapsed one expired."""
        live = len(self.intents) - len(self.lapsed)
        paid = self.count(Order, Order.payment_status == "paid")
        expired = self.count(Order, Order.hold_state == "expired")
        return (paid, expired) == (live, len(self.lapsed))

    def run_until_settled(
        self, timeout_s: float, on_progress: Callable[[int], None] | None = None
    ) -> None:
        """Poll (bounded) until settled; `on_progress` sees the capture count at the fake."""
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / POLL_S) + 1):
            if on_progress is not None:
                on_progress(self.fake.effect_counts().get("capture", 0))
            if self.settled() or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        assert self.settled(), self.states()
        time.sleep(2.0)  # a grace period in which a duplicate capture would show

    def tally(self) -> Tally:
        captures = Counter(e.pi_id for e in self.fake.effects if e.kind == "capture")
        live = [pi for n, pi in self.intents.items() if n not in self.lapsed]
        return Tally(
            attempted=len(self.intents),
            effects=sum(captures.values()),
            lost=sum(1 for pi in live if captures[pi] == 0),
            duplicated=sum(n - 1 for n in captures.values() if n > 1),
        )

    def states(self) -> dict[str, int]:
        """Orders by (payment status, hold state), capture operations by status, and the
        operations the capture jobs cover by the job's status (a job may cover a batch)."""
        with self.stack.rt.db.sessions() as session:
            rows: list[tuple[str, Any]] = [
                *session.execute(select(Order.payment_status + "/" + Order.hold_state,
                                        func.count()).group_by(Order.payment_status,
                                                               Order.hold_state)),
                *session.execute(select("op:" + ExternalOperation.status, func.count())
                                 .group_by(ExternalOperation.status)),
            ]  # fmt: skip
            capture_jobs = OutboxJob.job == "payment.capture"
            jobs = session.execute(select(OutboxJob.status, OutboxJob.payload).where(capture_jobs))
        covered: Counter[str] = Counter()
        for status, payload in jobs:
            covered[f"job:{status}"] += len(operation_ids(dict(payload)))
        return {**{str(k): int(v) for k, v in rows}, **covered}

    def close(self) -> None:
        self.client.close()


def _pid(process: psutil.Process) -> int:
    return int(process.pid)
