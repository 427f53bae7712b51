"""Capture on shipment: 10,000 card orders placed, confirmed and shipped through the ingress
stream, each shipment captured through the Stripe fake (in this process, no latency, no faults)
by real `orderflow worker` processes, against bare dramatiq's INSERT rate.

The stream holds every order's `order.placed`, then every `order.confirmed`, then every
`order.shipped`; the clock runs from releasing the stream (as in bench/ingress.py) until every
order is confirmed and its capture recorded in the database (consumers apply batches side by
side, so a confirmation may land after its order's capture).

It runs twice: with the hold's expiry unknown (every capture reads the PaymentIntent first),
then with it sent on `order.placed` (`capture_before`; no read). Two floor rows follow: bare
dramatiq doing one INSERT and a capture's Stripe calls per message against the same fake, to
show what those calls alone cost on this machine; then the capture requests with nothing else
(bench/stripe_cost.py), with the CPU each takes in the client and in the fake. Last, the same
orders paid on account (the three envelopes each, no capture), and the ceiling those two
floors set together: the best ratio capture on shipment could reach on this run's machine if
recording a capture cost nothing.
"""

from __future__ import annotations

import secrets
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Select, func, select

from bench.baseline import (
    DEFAULT_PROCESSES,
    DEFAULT_THREADS,
    STRIPE_KINDS,
    BenchContext,
    ResultRow,
    drain_seconds,
)
from bench.ingress import KEY_ID, load_stream, release, upsert_manufacturer, wait_consumers_idle
from bench.stripe_cost import stripe_cost_row
from models.db import migrate
from models.db.commerce import Order
from models.db.engine import connect
from models.db.machinery import ExternalOperation, ParkedMessage, QuarantinedMessage
from tasks.messages.signing import sign
from tests import factories
from tests.fakes.stripe_server import StripeFake
from workers import processes

ORDERS = 10_000
TOTAL = 25_800  # the sample order's total: what each capture must take
#: Emails are a flow of their own (see the backorders bench): the workers leave them queued.
QUEUES = ("default", "payments")
_POLL_S = 0.05
HOLD_S = 6 * 86_400  # a hold sent with the placement lapses in six days
READ = ("GET", "/v1/payment_intents/{id}")


def capture_scenario(ctx: BenchContext, *, orders: int = ORDERS) -> list[ResultRow]:
    """Two rows of `orders` orders from placement to a recorded capture (the hold's expiry
    unknown, then sent with the placement), then the two floor rows and the Stripe requests
    alone."""
    if ctx.postgres_server is None or ctx.redis_server is None:
        raise RuntimeError("the capture bench needs the runner's own servers")
    api_key = f"sk_test_{secrets.token_hex(12)}"
    server = ctx.postgres_server
    rows = []
    for known in (False, True):
        # A fake (a Stripe account) per database: order ids, and so idempotency keys, restart.
        with StripeFake.start(api_key) as fake:
            url = server.create_database(f"bench_capture_{uuid.uuid4().hex[:8]}")
            rows.append(_pipeline_row(ctx, fake, api_key, orders, hold_known=known, url=url))
            if known:
                rows += [floor_row(ctx, fake, api_key, kind) for kind in STRIPE_KINDS]
                stripe_row, stripe_cost = stripe_cost_row(ctx, fake, api_key, TOTAL)
                rows.append(stripe_row)
    with StripeFake.start(api_key) as fake:
        url = server.create_database(f"bench_capture_{uuid.uuid4().hex[:8]}")
        on_account = _on_account_row(ctx, fake, api_key, orders, url=url)
    return [*rows, on_account, ceiling_row(ctx, on_account, stripe_cost)]


def _on_account_row(
    ctx: BenchContext, fake: StripeFake, api_key: str, orders: int, *, url: str
) -> ResultRow:
    """The same three envelopes per order, paid on account: all of the pipeline but capture."""
    base = ctx.baseline()
    secret = secrets.token_hex(24).encode()
    migrate.upgrade(url)
    upsert_manufacturer(url, secret)
    before = sum(fake.requests.values())
    bodies = order_bodies([None] * orders, secret, on_account=True)
    seconds = _timed_run(ctx, url, bodies, fake=fake, secret=secret, api_key=api_key,
                         orders=orders, wait=_wait_shipped)  # fmt: skip
    check_on_account(url, orders, stripe_requests=sum(fake.requests.values()) - before)
    note = ("floor: the pipeline rows' workers and envelopes, orders paid on account: no "
            "capture and 0 Stripe requests; clock until every order is confirmed and "
            "shipped")  # fmt: skip
    return ResultRow("capture", "placed, confirmed, shipped, paid on account (no capture)",
                     orders, seconds, orders / seconds / base.insert_per_s, note)  # fmt: skip


def ceiling_row(ctx: BenchContext, on_account: ResultRow, stripe_cost: float) -> ResultRow:
    """Computed, not measured: an order can cost no less machine time than the on-account
    pipeline's plus one Stripe capture request's (`stripe_cost`, in bare INSERT messages)."""
    assert on_account.ratio is not None
    ratio = 1 / (1 / on_account.ratio + stripe_cost)
    seconds = on_account.messages / (ratio * ctx.baseline().insert_per_s)
    note = (
        f"computed, not measured: 1 / (1 / {on_account.ratio:.2f} + {stripe_cost:.2f}), the "
        "on-account row plus the Stripe requests' machine time; what capture on shipment "
        "would reach here if claiming and recording each capture cost nothing"
    )
    return ResultRow("capture", "ceiling: paid on account + one Stripe capture request per order",
                     on_account.messages, seconds, ratio, note)  # fmt: skip


def _pipeline_row(
    ctx: BenchContext, fake: StripeFake, api_key: str, orders: int, *, hold_known: bool, url: str
) -> ResultRow:
    base = ctx.baseline()
    secret = secrets.token_hex(24).encode()  # this run's only; never printed
    migrate.upgrade(url)
    upsert_manufacturer(url, secret)
    expiry = int(time.time()) + HOLD_S if hold_known else None
    intents = [fake.create_authorized_intent(TOTAL, "eur", expiry) for _ in range(orders)]
    reads_before = fake.requests.get(READ, 0)
    bodies = order_bodies(intents, secret, capture_before=expiry)
    seconds = _timed_run(ctx, url, bodies, fake=fake, secret=secret, api_key=api_key,
                         orders=orders)  # fmt: skip
    check_captures(url, fake, intents)
    reads = fake.requests.get(READ, 0) - reads_before
    hold = "hold expiry sent with the placement" if hold_known else "hold expiry unknown"
    note = (
        f"orderflow worker, {DEFAULT_PROCESSES} processes x {DEFAULT_THREADS} threads, queues "
        f"{'+'.join(QUEUES)}; clock from release until every order is confirmed and its "
        f"capture recorded; "
        f"{3 * orders} envelopes; Stripe fake in the bench process; {hold}: {reads} reads"
    )
    return ResultRow("capture", f"placed, confirmed, shipped, captured ({hold})", orders,
                     seconds, orders / seconds / base.insert_per_s, note)  # fmt: skip


def floor_row(ctx: BenchContext, fake: StripeFake, api_key: str, kind: str) -> ResultRow:
    """Bare dramatiq with one INSERT and the Stripe calls of a capture per message, against
    the same fake: how much of the ratio the Stripe calls alone take on this machine."""
    base = ctx.baseline()
    intents = [fake.create_authorized_intent(TOTAL, "eur") for _ in range(ctx.messages)]
    before = len(fake.effects)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(intents))
        listing.flush()
        stripe = {"api_key": api_key, "api_base": fake.base_url, "amount": TOTAL,
                  "intents_file": listing.name}  # fmt: skip
        seconds = drain_seconds(
            ctx.redis_url,
            ctx.database_url,
            kind,
            ctx.messages,
            processes=base.processes,
            threads=base.threads,
            stripe=stripe,
        )
    captured = Counter(e.pi_id for e in fake.effects[before:] if e.kind == "capture")
    if captured != dict.fromkeys(intents, 1):
        raise RuntimeError(f"floor {kind}: {sum(captured.values())} captures of {len(intents)}")
    calls = "read and capture" if kind == "read+capture" else "capture"
    return ResultRow(
        "capture",
        f"floor: bare dramatiq, 1 INSERT + Stripe {calls}/msg",
        ctx.messages,
        seconds,
        ctx.messages / seconds / base.insert_per_s,
        f"{base.processes} processes x {base.threads} threads; the same fake",
    )


def order_number(seq: int) -> str:
    return f"BENCH-C{seq:07d}"


def order_bodies(
    intents: Sequence[str | None], secret: bytes, *, capture_before: int | None = None,
    on_account: bool = False,
) -> list[bytes]:  # fmt: skip
    """Every order's placement, then every confirmation, then every shipment; all signed.
    `capture_before` (epoch seconds), when given, goes with each placement; `on_account`
    orders are paid on account (their intents are None)."""
    now = datetime.now(UTC).isoformat()  # placed now: no confirmation deadline passes meanwhile
    hold = (
        {}
        if capture_before is None
        else {"capture_before": datetime.fromtimestamp(capture_before, UTC).isoformat()}
    )
    if on_account:
        hold = {"payment_method": "on_account"}
    placed, confirmed, shipped = [], [], []
    for seq, pi_id in enumerate(intents):
        number = order_number(seq)
        customer = {"id": f"BCC-{seq:07d}", "email": f"c{seq}@example.com", "name": f"C {seq}"}
        placed.append(_signed("order.placed", secret, number=number, customer=customer,
                              stripe_payment_intent_id=pi_id, placed_at=now,
                              **hold))  # fmt: skip
        confirmed.append(_signed("order.confirmed", secret, number=number, at=now))
        shipped.append(_signed("order.shipped", secret, number=number, notify_customer=False,
                               tracking_numbers=[f"TRK-{seq:07d}"]))  # fmt: skip
    return placed + confirmed + shipped


def _signed(type_: str, secret: bytes, **fields: Any) -> bytes:
    return factories.body(sign(factories.envelope(type_, signed=False, **fields), KEY_ID, secret))


Wait = Callable[[str, processes.OrderflowProcess, int, float], None]


def _timed_run(
    ctx: BenchContext, url: str, bodies: list[bytes], *, fake: StripeFake, secret: bytes,
    api_key: str, orders: int, wait: Wait | None = None,
) -> float:  # fmt: skip
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        load_stream(client, bodies)
        with tempfile.TemporaryDirectory(prefix="orderflow-bench-capture-") as workdir:
            env = processes.child_env({
                "ORDERFLOW_DATABASE_URL": url, "ORDERFLOW_REDIS_URL": ctx.redis_url,
                "ORDERFLOW_SIGNING_KEYS": f"{KEY_ID}:{secret.decode()}",
                "ORDERFLOW_STRIPE_API_KEY": api_key, "ORDERFLOW_STRIPE_API_BASE": fake.base_url,
                "ORDERFLOW_DATA_DIR": workdir,
            })  # fmt: skip
            args = ["worker", "--processes", str(DEFAULT_PROCESSES),
                    "--threads", str(DEFAULT_THREADS)]  # fmt: skip
            args += [arg for queue in QUEUES for arg in ("--queue", queue)]
            proc = processes.start("capture-worker", args, env, Path(workdir))
            try:
                blocked = wait_consumers_idle(client, proc, DEFAULT_PROCESSES, 60.0)
                started = time.perf_counter()
                release(client, blocked)
                (wait or _wait_captured)(url, proc, orders, max(300.0, orders / 4))
                return time.perf_counter() - started
            finally:
                proc.terminate()
    finally:
        client.close()


def _wait_captured(url: str, proc: processes.OrderflowProcess, orders: int, timeout: float) -> None:
    """Poll until `orders` orders are confirmed, shipped and paid, each capture recorded
    (bounded in time; a confirmation may land after its order's capture); a failed capture
    ends the wait at once, with its error."""
    done = select(func.count()).select_from(Order).where(
        Order.confirmation_status == "confirmed", Order.fulfillment_status == "shipped",
        Order.payment_status == "paid",
    )  # fmt: skip
    capture = ExternalOperation.kind == "capture"
    failed = select(ExternalOperation.last_error).where(
        capture, ExternalOperation.status == "failed"
    )
    _wait_counted(url, proc, (orders, done, "orders confirmed and captured"), timeout, failed)


def _wait_shipped(url: str, proc: processes.OrderflowProcess, orders: int, timeout: float) -> None:
    """Poll until `orders` orders are confirmed and shipped (bounded in time): consumers apply
    batches side by side, so an order's shipment may land before its confirmation."""
    done = (
        select(func.count())
        .select_from(Order)
        .where(Order.confirmation_status == "confirmed", Order.fulfillment_status == "shipped")
    )
    _wait_counted(url, proc, (orders, done, "orders confirmed and shipped"), timeout)


def _wait_counted(
    url: str,
    proc: processes.OrderflowProcess,
    wanted: tuple[int, Select[Any], str],
    timeout: float,
    failed: Select[Any] | None = None,
) -> None:
    """Poll until the count query of `wanted` (count, query, what) reaches its count, bounded
    in time; a row of `failed` ends the wait at once, with its error."""
    count, query, what = wanted
    db = connect(url, pool_size=1)
    try:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and proc.popen.poll() is None:
            with db.sessions() as session:
                if int(session.scalar(query) or 0) >= count:
                    return
                error = None if failed is None else session.scalars(failed.limit(1)).first()
            if error is not None:
                raise RuntimeError(f"a capture failed: {error}")
            time.sleep(_POLL_S)
    finally:
        db.dispose()
    raise RuntimeError(f"not all {what} in {timeout} s:\n{proc.log_text()[-3000:]}")


def check_on_account(url: str, orders: int, *, stripe_requests: int) -> None:
    """Every order confirmed, shipped and awaiting its invoice; none held; Stripe never called."""
    states, held = _outcomes(url)
    wanted = {("confirmed", "shipped", "pending"): orders}
    if stripe_requests or dict(states) != wanted or any(held.values()):
        raise RuntimeError(f"on-account bench effects: orders {dict(states)}; {held}; "
                           f"{stripe_requests} Stripe requests")  # fmt: skip


def _outcomes(url: str) -> tuple[Counter[tuple[str, str, str]], dict[str, int]]:
    """Orders by their three statuses, and how many messages are quarantined or parked."""
    db = connect(url, pool_size=1)
    try:
        with db.sessions() as session:
            states = Counter(session.execute(
                select(Order.confirmation_status, Order.fulfillment_status, Order.payment_status)
            ).tuples())  # fmt: skip
            held = {m.__name__: int(session.scalar(select(func.count()).select_from(m)) or 0)
                    for m in (QuarantinedMessage, ParkedMessage)}  # fmt: skip
    finally:
        db.dispose()
    return states, held


def check_captures(url: str, fake: StripeFake, intents: list[str]) -> None:
    """A fast run that lost, duplicated, parked or quarantined anything must not count."""
    captures = Counter(e.pi_id for e in fake.effects if e.kind == "capture")
    states, held = _outcomes(url)
    wanted = {("confirmed", "shipped", "paid"): len(intents)}
    if captures != dict.fromkeys(intents, 1) or dict(states) != wanted or any(held.values()):
        raise RuntimeError(
            f"capture bench effects: {sum(captures.values())} captures over {len(captures)} "
            f"intents (want {len(intents)} once each); orders {dict(states)}; {held}"
        )
