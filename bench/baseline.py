"""Bare dramatiq on the bench's Redis and PostgreSQL: the yardstick every scenario divides by.

Also the small vocabulary all scenarios share (context, result rows), so they need not import
the runner.
"""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dramatiq
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker

from tests.services import PostgresServer, RedisServer
from workers.settings import Settings

NAMESPACE = "bench"
#: The shape of `orderflow worker` by default, so ratios compare like with like.
DEFAULT_PROCESSES = int(Settings.model_fields["worker_processes"].default)
DEFAULT_THREADS = int(Settings.model_fields["worker_threads"].default)
_PIPELINE_BATCH = 1000
#: Bare dramatiq plus Stripe calls (see `_stripe_actor`).
STRIPE_KINDS = ("capture", "read+capture")
_ACTORS = {kind: f"bench_{kind.replace('+', '_')}" for kind in (*STRIPE_KINDS, "noop", "insert")}
_REPO = Path(__file__).resolve().parents[1]
_BOOT_TIMEOUT_S = 60.0

_metadata = sa.MetaData()
INSERTS = sa.Table(
    "bench_baseline_insert",
    _metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class Baseline:
    """Messages per second drained by bare dramatiq, no-op and one INSERT per message."""

    noop_per_s: float
    insert_per_s: float
    processes: int
    threads: int


@dataclass(frozen=True)
class ResultRow:
    """One line of the results table."""

    scenario: str
    case: str
    messages: int
    seconds: float
    ratio: float | None  # per_s / bare dramatiq insert_per_s
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BenchContext:
    """What a scenario gets: the run's own servers, the message count, the shared baseline."""

    redis_url: str
    database_url: str
    messages: int
    #: The servers themselves, for scenarios that need a fresh database or a restart.
    redis_server: RedisServer | None = None
    postgres_server: PostgresServer | None = None
    _baseline: Baseline | None = field(default=None, init=False)

    def baseline(self) -> Baseline:
        """Measured once per run, on first use."""
        if self._baseline is None:
            self._baseline = measure_baseline(self.redis_url, self.database_url, self.messages)
        return self._baseline


@dataclass(frozen=True)
class _WorkerSpec:
    redis_url: str
    database_url: str
    queue: str
    kind: str  # "noop", "insert", or "capture" / "read+capture" (an INSERT and Stripe calls)
    threads: int
    #: For the Stripe kinds: where the fake listens, its key, the amount, and a file of intent
    #: ids, one a line (message `seq` captures line `seq`).
    stripe: dict[str, Any] = field(default_factory=dict)


def measure_baseline(
    redis_url: str,
    database_url: str,
    messages: int,
    *,
    processes: int = DEFAULT_PROCESSES,
    threads: int = DEFAULT_THREADS,
) -> Baseline:
    """Drain `messages` no-op messages, then `messages` one-INSERT messages; rates in msg/s."""
    noop, insert = (drain_seconds(redis_url, database_url, kind, messages, processes=processes,
                                  threads=threads) for kind in ("noop", "insert"))  # fmt: skip
    return Baseline(messages / noop, messages / insert, processes, threads)


def drain_seconds(
    redis_url: str,
    database_url: str,
    kind: str,
    messages: int,
    *,
    processes: int,
    threads: int,
    stripe: dict[str, Any] | None = None,
) -> float:
    """Enqueue first, then time from worker start until every message is acknowledged."""
    queue = f"{kind.replace('+', '_')}_{uuid.uuid4().hex[:8]}"
    if kind != "noop":
        _reset_table(database_url)
    _enqueue(redis_url, queue, _ACTORS[kind], messages)
    worker = _WorkerSpec(redis_url, database_url, queue, kind, threads, stripe or {})
    spec = json.dumps(asdict(worker))
    # Fresh interpreters, as the `dramatiq` CLI uses; stdin/stdout carry go/ready/stop.
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.baseline", spec],
            cwd=_REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        _wait_booted(children, _BOOT_TIMEOUT_S)
        started = time.perf_counter()
        for child in children:
            _tell(child, "go")
        _wait_drained(redis_url, queue, timeout=max(60.0, messages / 50))
        elapsed = time.perf_counter() - started
    finally:
        _stop_children(children)
    _check_effects(redis_url, database_url, queue, kind != "noop", messages)
    return elapsed


def _wait_booted(children: list[subprocess.Popen[str]], timeout: float) -> None:
    """Wait for each child's "ready" line; fail at once when one dies instead."""
    deadline = time.monotonic() + timeout
    for child in children:
        assert child.stdout is not None
        left = max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select([child.stdout], [], [], left)
        line = child.stdout.readline().strip() if readable else ""
        if line != "ready":
            raise RuntimeError(f"bench worker did not boot: exit code {child.poll()}, {line=}")


def _tell(child: subprocess.Popen[str], word: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):
        assert child.stdin is not None
        child.stdin.write(word + "\n")
        child.stdin.flush()


def _stop_children(children: list[subprocess.Popen[str]]) -> None:
    for child in children:
        _tell(child, "stop")
    for child in children:
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


def _reset_table(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        _metadata.drop_all(engine)
        _metadata.create_all(engine)
    finally:
        engine.dispose()


def _enqueue(redis_url: str, queue: str, actor_name: str, messages: int) -> None:
    """Enqueue through dramatiq's own Lua script, `_PIPELINE_BATCH` messages per round trip."""
    client = redis.Redis.from_url(redis_url)

    def message(seq: int) -> dramatiq.Message[Any]:
        return dramatiq.Message(
            queue_name=queue, actor_name=actor_name, args=(seq,), kwargs={}, options={}
        )

    # The first goes alone: it makes dramatiq learn the Lua stack size, which a pipeline
    # cannot (every reply is deferred to execute()).
    _broker(client=client, middleware=[]).enqueue(message(0))
    pipe = client.pipeline(transaction=False)
    piped = _broker(client=pipe, middleware=[])
    for seq in range(1, messages):
        piped.enqueue(message(seq))
        if seq % _PIPELINE_BATCH == 0:
            pipe.execute()
    pipe.execute()
    client.close()


def _wait_drained(redis_url: str, queue: str, timeout: float) -> None:
    """Poll until dramatiq holds no message of `queue` (acked messages leave its hash)."""
    with redis.Redis.from_url(redis_url) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.hlen(f"{NAMESPACE}:{queue}.msgs") == 0:
                return
            time.sleep(0.005)
    raise TimeoutError(f"queue {queue} not drained within {timeout} s")


def _check_effects(
    redis_url: str, database_url: str, queue: str, inserts: bool, messages: int
) -> None:
    """A fast run that lost or dead-lettered messages must not count."""
    with redis.Redis.from_url(redis_url) as client:
        dead = int(client.zcard(f"{NAMESPACE}:{queue}.XQ"))
    if dead:
        raise RuntimeError(f"{dead} bench messages were dead-lettered")
    if inserts:
        engine = sa.create_engine(database_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(INSERTS)).scalar_one()
        engine.dispose()
        if rows != messages:
            raise RuntimeError(f"expected {messages} inserted rows, found {rows}")


def _broker(
    *, url: str | None = None, client: Any = None, middleware: list[Any] | None = None
) -> RedisBroker:
    """A RedisBroker under the bench namespace (None middleware means dramatiq's defaults)."""
    return RedisBroker(  # type: ignore[no-untyped-call]  # unannotated in dramatiq 2.x
        url=url, client=client, namespace=NAMESPACE, middleware=middleware
    )


def _work(spec: _WorkerSpec) -> None:
    """One worker process: boot, say ready, start on "go", stop on "stop" (or end of input)."""
    broker = _broker(url=spec.redis_url)
    engine = sa.create_engine(spec.database_url, pool_size=spec.threads, max_overflow=0)
    declare = dramatiq.actor(
        broker=broker, actor_name=_ACTORS[spec.kind], queue_name=spec.queue, max_retries=3
    )
    declare(_actor_function(spec, engine))
    worker = dramatiq.Worker(broker, queues={spec.queue}, worker_threads=spec.threads)
    print("ready", flush=True)
    if sys.stdin.readline().strip() == "go":
        worker.start()
        sys.stdin.readline()
        worker.stop()
    broker.close()
    engine.dispose()


def _actor_function(spec: _WorkerSpec, engine: sa.Engine) -> Callable[[int], None]:
    def bench_noop(seq: int) -> None:
        return None

    def bench_insert(seq: int) -> None:
        with engine.begin() as conn:  # one transaction per message
            conn.execute(sa.insert(INSERTS).values(seq=seq))

    if spec.kind == "noop":
        return bench_noop
    if spec.kind == "insert":
        return bench_insert
    return _stripe_actor(spec, bench_insert)


def _stripe_actor(spec: _WorkerSpec, insert: Callable[[int], None]) -> Callable[[int], None]:
    """The INSERT, then orderflow's own Stripe adapter (the cheapest client we have) capturing
    the message's PaymentIntent, reading it first for "read+capture": what the Stripe calls
    alone cost here, with no order, ledger or outbox around them."""
    from workers.adapters.stripe import StripeGateway  # only these kinds need it

    gateways = threading.local()  # one kept-alive connection per thread, as the workers have
    intents = Path(spec.stripe["intents_file"]).read_text().split()
    read_first = spec.kind == "read+capture"

    def bench_stripe(seq: int) -> None:
        if not hasattr(gateways, "gateway"):
            gateways.gateway = StripeGateway(spec.stripe["api_key"], spec.stripe["api_base"])
        insert(seq)
        if read_first:
            gateways.gateway.retrieve(intents[seq])
        gateways.gateway.capture(intents[seq], spec.stripe["amount"], f"{spec.queue}:{seq}")

    return bench_stripe


if __name__ == "__main__":
    _work(_WorkerSpec(**json.loads(sys.argv[1])))
