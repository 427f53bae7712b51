"""Secrets canary: unique secrets in every secret setting, a run with faults through real
processes, then no canary (nor an encoding of one) in any log, table, Redis key, stored error,
email or CLI output; the run is counted too, so it cannot pass idly (docs/fuzzing.md)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from models.db.commerce import Order
from models.db.machinery import (
    ExternalOperation,
    InboxEntry,
    Notification,
    OutboxJob,
    QuarantinedMessage,
)
from tasks.messages.signing import sign
from tasks.notifications.staging import SEND_JOB
from tasks.payments.requesting import RECONCILE_JOB
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.e2e.secrets_scan import Canaries, Scan
from tests.fakes import stripe_events as se
from tests.fakes.stripe_faults import FaultKind
from tests.fakes.stripe_server import StripeFake
from tests.services import RedisServer, ServiceBed
from tests.services.common import free_port
from tests.support import wait_until
from workers.demo.smtp_sink import SmtpSink
from workers.http.stripe_webhooks import PATH
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM

pytestmark = pytest.mark.e2e
CANARIES = Canaries.plant()
NEW_KEY, OLD_KEY = CANARIES.signing
ORDERS = 6
TOTAL = 25_800  # the sample order: 2 x 12,900 and a free leaflet
REFUSED = 5  # the order whose customer the mail server refuses for good
# One fault on each of the first four captures; the others go through at once.
CAPTURE_FAULTS = (FaultKind.SERVER_ERROR_BEFORE, FaultKind.SERVER_ERROR_AFTER,
                  FaultKind.TIMEOUT_AFTER, FaultKind.RESET_AFTER)  # fmt: skip
SMTP_FAULTS = ("smtp_auth", "smtp_deferred")
AUTH_REFUSALS = 4  # AUTH commands: two refused logins (smtplib tries PLAIN, then LOGIN)
SETTINGS = {"stripe_timeout_s": 1.0, "scheduler_tick_s": 0.5, "ingress_claim_idle_s": 3,
            "outbox_redeliver_after_s": 10}  # fmt: skip
QUARANTINED = {"not_json": 1, "signature_invalid": 2, "signature_unknown_key": 1,
               "signature_missing": 1}  # fmt: skip
# Not secrets: values the run must leave in every kind of place scanned, so that a scan that
# reads nothing (a broken cast, an empty key pattern) fails instead of passing.
CONTROLS = {"control:order": b"CN0", "control:event": b"evt_canary0001"}
SCANNED_KINDS = {"file", "cell", "redis_value", "email", "http", "cli"}
SETTLE_S = 60
CLI_TIMEOUT_S = 60


@dataclass
class Run:
    """The stack, its fakes, and what the test saw from outside (CLI output, HTTP answers)."""

    stack: Stack
    fake: StripeFake
    sink: SmtpSink
    client: redis.Redis
    webhook_url: str
    intents: dict[str, str] = field(default_factory=dict)  # order number -> PaymentIntent
    outputs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    answers: list[httpx.Response] = field(default_factory=list)


def _signed(raw: dict[str, Any], key: tuple[str, str] = NEW_KEY) -> dict[str, Any]:
    return sign(raw, key[0], key[1].encode())


def _xadd(run: Run, bodies: list[bytes]) -> None:
    pipe = run.client.pipeline(transaction=False)
    for body in bodies:
        pipe.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: body})
    pipe.execute()


def _configure(stack: Stack, fake: StripeFake, sink: SmtpSink) -> str:
    """Every secret setting holds a canary; the processes talk to our fakes. The webhook URL."""
    port = free_port()
    stack.env.update({
        "ORDERFLOW_STRIPE_API_KEY": CANARIES.stripe_key,
        "ORDERFLOW_STRIPE_API_BASE": fake.base_url,
        "ORDERFLOW_STRIPE_WEBHOOK_SECRET": CANARIES.webhook_secret,
        "ORDERFLOW_SIGNING_KEYS": CANARIES.signing_keys_setting,
        "ORDERFLOW_SMTP_URL": sink.url,
        "ORDERFLOW_WEBHOOK_PORT": str(port),
    })  # fmt: skip
    return f"http://127.0.0.1:{port}"


def _cli(run: Run, name: str, *args: str, stdin: str | None = None) -> None:
    """Run `orderflow <args>` to completion; its output is kept and written to the logs."""
    done = subprocess.run(
        [sys.executable, "-m", "workers", *args], env=run.stack.env, input=stdin,
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
    )  # fmt: skip
    run.outputs[name] = done
    (run.stack.logs / f"cli-{name}.log").write_text(done.stdout + done.stderr)


def _cli_parallel(run: Run, commands: dict[str, list[str]]) -> None:
    """Several read-only CLI commands at once (each spends most of its time importing). One
    that hangs is made to print its stack (faulthandler) and fails the test with it."""
    env = {**run.stack.env, "PYTHONFAULTHANDLER": "1"}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "workers", *args], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, args in commands.items()
    }  # fmt: skip
    deadline = time.monotonic() + CLI_TIMEOUT_S
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=30)
        run.outputs[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        (run.stack.logs / f"cli-{name}.log").write_text(out + err)
    hung = {name: done.stderr[-3000:] for name, done in run.outputs.items() if done.returncode < 0}
    assert hung == {}


def _place(run: Run) -> None:
    """The manufacturer through `orderflow publish` (with a broken line), then card orders
    signed alternately with the new and the old key (rotation: both verify)."""
    maker = f.manufacturer(signed=False, notify_email=None, notify_webhook_url=None)
    _cli(run, "publish", "publish", "-", stdin=json.dumps(maker) + "\n{broken\n")
    placed_at = datetime.now(UTC).isoformat()  # now: no confirmation deadline passes
    bodies = []
    for i in range(ORDERS):
        number = f"CN{i}"
        run.intents[number] = run.fake.create_authorized_intent(TOTAL, "eur")
        customer = {"id": f"C{i}", "email": f"canary{i}@example.com", "name": f"Customer {i}"}
        raw = f.order(number, signed=False, customer=customer, placed_at=placed_at,
                      stripe_payment_intent_id=run.intents[number])  # fmt: skip
        bodies.append(f.body(_signed(raw, (NEW_KEY, OLD_KEY)[i % 2])))
    _xadd(run, bodies)


def _bad_envelopes() -> list[bytes]:
    """Not JSON; tampered after signing; an unknown key id; a known id with a wrong secret;
    a money-moving type unsigned."""
    tampered = _signed(f.envelope("order.shipped", signed=False, number="CN0"))
    tampered["data"]["tracking_numbers"] = ["FORGED"]
    retired = ("canary-retired", "a-secret-nobody-configured")
    wrong = (NEW_KEY[0], "the-wrong-secret")
    return [
        b"\xff\x00not json {",
        f.body(tampered),
        f.body(_signed(f.envelope("order.accepted", signed=False, number="CN1"), retired)),
        f.body(_signed(f.envelope("order.accepted", signed=False, number="CN2"), wrong)),
        f.body(f.envelope("order.cancelled", signed=False, number="CN3")),
    ]


def _ship(run: Run) -> None:
    """Fault the first captures at the fake, then ship every order among bad envelopes."""
    for number, kind in zip(run.intents, CAPTURE_FAULTS, strict=False):
        run.fake.faults.inject_next(f"/v1/payment_intents/{run.intents[number]}/capture$", kind)
    shipments = [
        f.body(_signed(f.envelope("order.shipped", signed=False, number=number,
                                  tracking_numbers=[f"TRK-{number}"], notify_customer=True),
                       (NEW_KEY, OLD_KEY)[i % 2]))
        for i, number in enumerate(run.intents)
    ]  # fmt: skip
    _xadd(run, shipments[:3] + _bad_envelopes() + shipments[3:])


def _post_webhooks(run: Run) -> None:
    """One event Stripe really signed (for the first order's intent), four forged or broken."""
    event = se.event("payment_intent.succeeded", "evt_canary0001", run.intents["CN0"])
    raw = se.body(event)
    good = se.headers(raw, CANARIES.webhook_secret)
    posts = [
        good,
        se.headers(raw, "whsec_forged_by_someone"),
        {"Content-Type": "application/json"},  # no Stripe-Signature at all
        se.headers(raw, CANARIES.webhook_secret, at=1_700_000_000),  # stale
        {**good, "Stripe-Signature": "not a signature header"},
    ]
    with httpx.Client(base_url=run.webhook_url, trust_env=False, timeout=10) as http:
        run.answers = [http.post(PATH, content=raw, headers=h) for h in posts]


def _webhooks_listening(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=1, trust_env=False).status_code == 404
    except httpx.TransportError:
        return False


def _count(stack: Stack, model: type, *where: Any) -> int:
    with stack.rt.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _column(stack: Stack, col: Any, *where: Any) -> list[Any]:
    with stack.rt.db.sessions() as session:
        return list(session.scalars(select(col).where(*where)))


def _running(stack: Stack) -> bool:
    """True while every started process runs; a dead one fails the test with its log's end."""
    dead = {p.name: p.log_text()[-2000:] for p in stack.started if p.popen.poll() is not None}
    assert dead == {}
    return True


def _placed(run: Run) -> bool:
    """Every order stored (and every process still running)."""
    return _running(run.stack) and _count(run.stack, Order) == ORDERS


def _settled(run: Run) -> bool:
    """Every order paid, every email sent or failed, every bad envelope quarantined."""
    stack = run.stack
    return (
        _running(stack)
        and _count(stack, Order, Order.payment_status == "paid") == ORDERS
        and _count(stack, Notification, Notification.status.in_(("pending", "sending"))) == 0
        and _count(stack, Notification) == 2 * ORDERS
        and _count(stack, QuarantinedMessage) == sum(QUARANTINED.values())
    )


def _stop(stack: Stack) -> list[int]:
    """SIGTERM every long-running process at once, then collect the exit codes."""
    for proc in stack.started:
        proc.popen.send_signal(signal.SIGTERM)
    return [proc.popen.wait(60) for proc in stack.started]


def _scan(run: Run, redis_server: RedisServer, service_bed: ServiceBed) -> Scan:
    """Every file of this run (process logs, CLI output, data dir) and our servers' logs,
    the whole database, every Redis key, the emails and the HTTP answers."""
    scan = Scan({**CANARIES.needles(), **CONTROLS})
    roots = [run.stack.logs.parent, redis_server.log]
    if service_bed.external_database_url is None:  # ours: its log is ours to read
        roots.append(service_bed.postgres_server().log)
    scan.files(roots)
    scan.database(run.stack.rt.db.engine)
    scan.redis(run.client)
    for mail in run.sink.messages:
        scan.check("email", f"email to {mail.rcpt_tos}", mail.raw)
    for answer in run.answers:
        scan.check("http", f"webhook answer {answer.status_code}", answer.content)
    for name, done in run.outputs.items():
        scan.check("cli", f"orderflow {name}", done.stdout + done.stderr)
    return scan


def _report(run: Run) -> None:
    """What an operator would run afterwards; all read-only, so at once."""
    with run.stack.rt.db.sessions() as session:
        unknown_key = session.scalars(
            select(QuarantinedMessage.id).where(
                QuarantinedMessage.reason == "signature_unknown_key"
            )
        ).one()
    _cli_parallel(run, {
        "status": ["status", "--json"],
        "quarantine-list": ["quarantine", "list"],
        "quarantine-show": ["quarantine", "show", str(unknown_key)],
        "export-notifications": ["export", "notifications", "--format", "jsonl"],
        "order-show": ["order", "show", f"CN{REFUSED}", "--json"],
    })  # fmt: skip


def _diagnose(run: Run) -> str:
    """Counts only (never settings): why the run did not settle."""
    stack = run.stack
    with stack.rt.db.sessions() as session:
        rows = {
            "orders": Counter(session.scalars(select(Order.payment_status))),
            "notifications": Counter(session.scalars(select(Notification.status))),
            "quarantine": Counter(session.scalars(select(QuarantinedMessage.reason))),
            "jobs": Counter(session.scalars(select(OutboxJob.job + ":" + OutboxJob.status))),
        }
    return f"{rows} captures={run.fake.effect_counts()} mails={run.sink.count()}"


def _reason(error: str) -> str:
    """The reason code of a stored error: `reason: detail`, maybe after `ErrorClass: `."""
    head, _, rest = error.partition(": ")
    return rest.partition(": ")[0] if head.endswith(("Error", "Outcome")) else head


def _assert_payments(run: Run) -> None:
    stack, fake = run.stack, run.fake
    captures = Counter(effect.pi_id for effect in fake.effects if effect.kind == "capture")
    assert captures == Counter(run.intents.values())  # exactly one capture per order
    assert Counter(fired.kind for fired in fake.faults.fired) == Counter(CAPTURE_FAULTS)
    states = Counter(_column(stack, Order.payment_status + "/" + Order.hold_state))
    assert states == {"paid/captured": ORDERS}
    errors = _column(stack, ExternalOperation.last_error, ExternalOperation.last_error.is_not(None))
    assert Counter(map(_reason, errors)) == {"stripe_server_error": 2, "stripe_unreachable": 2}


def _assert_ingress(run: Run) -> None:
    stack = run.stack
    assert Counter(_column(stack, QuarantinedMessage.reason)) == QUARANTINED
    assert all(_column(stack, QuarantinedMessage.detail))
    assert Counter(_column(stack, InboxEntry.type)) == {
        "manufacturer.upserted": 1, "order.placed": ORDERS, "order.shipped": ORDERS,
        "stripe.event": 1,
    }  # fmt: skip
    assert [answer.status_code for answer in run.answers] == [200, 400, 400, 400, 400]
    assert run.answers[0].json() == {"received": "evt_canary0001"}


def _assert_mail(run: Run) -> None:
    stack, sink = run.stack, run.sink
    assert Counter(_column(stack, Notification.status)) == {"sent": 2 * ORDERS - 2, "failed": 2}
    assert Counter(_column(stack, Notification.template)) == {
        "fulfillment_shipped": ORDERS, "payment_paid": ORDERS,
    }  # fmt: skip
    failed = _column(stack, Notification.last_error, Notification.status == "failed")
    assert failed == ["recipient_refused: 550 5.1.1 mailbox unavailable"] * 2
    assert (sink.count(), sink.attempts, sink.auth_refusals, sink.rcpt_rejections) == (
        2 * ORDERS - 2, 2 * ORDERS - 1, AUTH_REFUSALS, 2,
    )  # fmt: skip
    sends = (OutboxJob.job == SEND_JOB.name, OutboxJob.last_error.is_not(None))
    reasons = Counter(map(_reason, _column(stack, OutboxJob.last_error, *sends)))
    # The rows that met a refused login or the deferral keep that error; which rows is a race.
    assert reasons["recipient_refused"] == 2
    assert {"recipient_refused"} < set(reasons) <= {"recipient_refused", *SMTP_FAULTS}


def _assert_outputs(run: Run, exit_codes: list[int]) -> None:
    out = run.outputs
    assert out["publish"].stdout == "published 1 envelopes\n"
    assert "line 2: not JSON" in out["publish"].stderr
    # status: 0 all well, 1 needs attention (it does: quarantine, failed emails); 2 would mean
    # it could not read a source.
    assert {name: done.returncode for name, done in out.items()} == {
        "publish": 1, "status": out["status"].returncode, "quarantine-list": 0,
        "quarantine-show": 0, "export-notifications": 0, "order-show": 0,
    }  # fmt: skip
    assert out["status"].returncode in (0, 1)
    assert isinstance(json.loads(out["status"].stdout), dict)
    listed = out["quarantine-list"].stdout  # a table (cells cut short), then counts by reason
    assert [reason in listed for reason in QUARANTINED] == [True] * len(QUARANTINED)
    notifications = [json.loads(line) for line in out["export-notifications"].stdout.splitlines()]
    assert Counter(n["status"] for n in notifications) == {"sent": 2 * ORDERS - 2, "failed": 2}
    assert json.loads(out["order-show"].stdout)["number"] == f"CN{REFUSED}"
    assert exit_codes == [0, 0, 0]  # scheduler, webhooks and worker stopped cleanly


def _assert_the_run(run: Run, exit_codes: list[int]) -> None:
    _assert_payments(run)
    _assert_ingress(run)
    _assert_mail(run)
    _assert_outputs(run, exit_codes)


def test_the_scan_finds_every_form_of_every_canary() -> None:
    # Given fresh canaries and each of their forms written into a log-like line
    canaries = Canaries.plant()
    needles = canaries.needles()
    scan = Scan(needles)
    # When each line is scanned
    for name, needle in needles.items():
        scan.check("line", name, b"12:00:01 INFO orderflow.x: sent " + needle + b"; done")
    # Then every form is found in its own line (a form may also hide inside a longer one)
    assert {(found.needle, found.where) for found in scan.findings} >= {(n, n) for n in needles}
    assert len(needles) == 15


@pytest.fixture
def fakes() -> Iterator[tuple[StripeFake, SmtpSink]]:
    """The Stripe fake (knowing only the canary key) and an SMTP sink requiring AUTH."""
    auth = (CANARIES.smtp_user, CANARIES.smtp_password)
    with (
        StripeFake.start(CANARIES.stripe_key, seed=3, timeout_delay=2.0) as fake,
        SmtpSink.start(require_auth=auth) as sink,
    ):
        yield fake, sink


def _run_everything(run: Run) -> list[int]:
    """Start the processes, place, ship, post webhooks, report, stop; the exit codes."""
    stack, started = run.stack, time.monotonic()
    stack.start("scheduler", "scheduler")
    stack.start("webhooks", "webhooks")
    stack.start("worker", "worker", "--processes", "1", "--threads", "4")
    _place(run)  # meanwhile the worker boots
    assert wait_until(lambda: _placed(run), 60), _diagnose(run)
    placed = time.monotonic()
    _ship(run)
    assert wait_until(lambda: _settled(run), SETTLE_S), _diagnose(run)
    assert wait_until(lambda: _webhooks_listening(run.webhook_url), 30)
    _post_webhooks(run)
    # The genuine webhook's reconcile (the hold watch may also read holds whose expiry is
    # unknown, under keys of its own, depending on when its tick falls)
    reconciled = (
        OutboxJob.job == RECONCILE_JOB.name,
        OutboxJob.key.startswith("stripe:"),
        OutboxJob.status == "done",
    )
    assert wait_until(lambda: _count(stack, OutboxJob, *reconciled) == 1, 30), _diagnose(run)
    settled = time.monotonic()
    _report(run)
    reported = time.monotonic()
    exit_codes = _stop(stack)
    print(f"boot+place {placed - started:.1f}s, ship+settle {settled - placed:.1f}s, "
          f"cli {reported - settled:.1f}s, stop {time.monotonic() - reported:.1f}s")  # fmt: skip
    return exit_codes


@pytest.mark.parametrize("stack", [SETTINGS], indirect=True)
def test_no_planted_secret_appears_anywhere_after_a_run_with_faults(
    stack: Stack,
    fakes: tuple[StripeFake, SmtpSink],
    redis_server: RedisServer,
    service_bed: ServiceBed,
) -> None:
    # Given canaries in every secret setting; Stripe faults four captures, and the mail server
    # refuses two logins, defers one mail and refuses one customer for good
    fake, sink = fakes
    sink.refuse_auth(AUTH_REFUSALS)
    sink.temporary_failure(1, 451)
    sink.reject_recipient(f"canary{REFUSED}@example.com", 550, "5.1.1 mailbox unavailable")
    with redis.Redis.from_url(stack.settings.redis_url) as client:
        run = Run(stack, fake, sink, client, _configure(stack, fake, sink))
        # When real processes place, ship and capture six card orders among five bad
        # envelopes, five webhooks arrive (one genuine), and the CLI reports on it all
        exit_codes = _run_everything(run)
        # Then the run did what it claims
        _assert_the_run(run, exit_codes)
        # And no canary, in any form, is in any file, table, Redis key, email or output
        scan = _scan(run, redis_server, service_bed)
    print(f"scanned {dict(scan.looked_at)}")
    assert [found for found in scan.findings if found.needle not in CONTROLS] == []
    assert {found.kind for found in scan.findings} >= SCANNED_KINDS  # the controls, everywhere
    assert scan.looked_at["file"] >= 3 + len(run.outputs)  # three processes, each CLI run
    assert scan.looked_at["table"] >= 20
    assert (scan.looked_at["email"], scan.looked_at["http"]) == (2 * ORDERS - 2, 5)
