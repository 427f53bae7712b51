"""Real `orderflow` processes on a Redis with ACL users (docs/deploy/redis-users.acl): a worker
as `worker`, producers as `producer`, over plain TCP and over TLS (`rediss://`); no password is
ever printed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from models.db import migrate
from models.db.commerce import Order
from models.db.machinery import InboxEntry, QuarantinedMessage
from tests import factories as f
from tests.conftest import unavailable
from tests.e2e.conftest import Stack
from tests.redis_acl import AclRedis, denials, start_acl_redis
from tests.services import ServiceError
from tests.support import now, wait_until
from workers import processes
from workers.queue import client as producer_client
from workers.queue.streams import EGRESS_STREAM, INGRESS_STREAM
from workers.runtime import open_runtime
from workers.settings import Settings

pytestmark = pytest.mark.e2e
PAD = {"sku": "PAD", "quantity": 1, "unit_price": 900, "is_insert": False}
DRILL = {"sku": "DRILL", "quantity": 2, "unit_price": 5000, "is_insert": False}


@pytest.fixture(scope="module")
def acl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclRedis]:
    try:
        server = start_acl_redis(tmp_path_factory.mktemp("acl-redis"), tls=True)
    except ServiceError as error:
        unavailable(str(error))
    yield server
    server.stop()


@pytest.fixture
def stack_on(
    acl: AclRedis, fresh_postgres_url: str, tmp_path: Path
) -> Iterator[Callable[[str], Stack]]:
    """A stack whose processes use `redis_url`, on an emptied server (ours) and a fresh database."""
    made: list[Stack] = []

    def make(redis_url: str) -> Stack:
        acl.server.flushall()
        with acl.admin() as admin:
            admin.acl_log_reset()
        values = {
            "database_url": fresh_postgres_url,
            "redis_url": redis_url,
            "data_dir": str(tmp_path / "data"),
            "signing_keys": f.SIGNING_KEYS_SETTING,
        }
        migrate.upgrade(fresh_postgres_url)
        env = processes.child_env({f"ORDERFLOW_{k.upper()}": v for k, v in values.items()})
        settings = Settings(**values, _env_file=None)  # type: ignore[arg-type]
        made.append(Stack(settings, env, open_runtime(settings), tmp_path / "logs"))
        return made[-1]

    yield make
    for stack in made:
        for proc in stack.started:
            proc.kill()
        stack.rt.close()


def _state(stack: Stack) -> tuple[list[str], int, list[str]]:
    """(order numbers, inbox entries, quarantine reasons)."""
    with stack.rt.db.sessions() as session:
        numbers = sorted(session.scalars(select(Order.number)))
        inbox = int(session.scalar(select(func.count()).select_from(InboxEntry)) or 0)
        return numbers, inbox, list(session.scalars(select(QuarantinedMessage.reason)))


def _publish_cli(
    env: dict[str, str], lines: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """`orderflow publish -` with these JSON lines."""
    return subprocess.run(
        [sys.executable, "-m", "workers", "publish", "-"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_worker_user_applies_what_the_producer_user_enqueued_and_the_producer_reads_egress(
    acl: AclRedis, stack_on: Callable[[str], Stack]
) -> None:
    # Given a worker and a scheduler authenticated as `worker`, and an order split so that 2
    # drills wait on a backorder
    stack = stack_on(acl.url("worker"))
    scheduler = stack.start("scheduler", "scheduler")
    stack.worker()
    pads = f.envelope("inventory.set", sku="PAD", quantity=1)
    # Placed now, so the scheduler's deadline scan puts no overdue event on the egress stream
    order = f.order("ACL-1", lines=[PAD, DRILL], placed_at=now().isoformat())
    with acl.client("producer") as producer:
        producer_client.publish(producer, [f.manufacturer(), pads, order])
        raw: Any = producer  # one plain XADD, as docs/producers.md shows it
        split = f.envelope("order.split_requested", number="ACL-1")
        raw.execute_command("XADD", INGRESS_STREAM, "*", "envelope", f.body(split))
        assert wait_until(lambda: _state(stack)[0] == ["ACL-1", "ACL-1-backorder"], 30)
        # When the drills arrive, published with `orderflow publish` as the producer user
        cli_env = {**stack.env, "ORDERFLOW_REDIS_URL": acl.url("producer")}
        receipt = {"type": "inventory.received", "data": {"sku": "DRILL", "quantity": 2}}
        published = _publish_cli(cli_env, [receipt])
        # Then the worker releases the backorder, and the producer reads it on the egress stream
        entries: Any = []

        def submitted() -> bool:
            nonlocal entries
            entries = producer.xrange(EGRESS_STREAM)
            return len(entries) == 1

        assert wait_until(submitted, 30), stack.started[1].log_text()[-3000:]
    event = json.loads(entries[0][1][b"event"])
    assert (event["type"], event["data"]["number"]) == ("fulfillment.submitted", "ACL-1-backorder")
    assert (published.returncode, published.stdout.strip()) == (0, "published 1 envelopes")
    assert _state(stack) == (["ACL-1", "ACL-1-backorder"], 5, [])
    assert "scheduler started" in scheduler.log_text()
    with acl.admin() as admin:
        assert admin.xlen(INGRESS_STREAM) == 0
        # And no command of any process was refused: the ACL lines are enough for this work
        assert (denials(admin, "worker"), denials(admin, "producer")) == (set(), set())
    printed = (
        "".join(proc.log_text() for proc in stack.started) + published.stdout + published.stderr
    )
    assert [user for user, password in acl.passwords.items() if password in printed] == []


def test_a_worker_connects_over_tls_with_the_ca_from_the_url(
    acl: AclRedis, stack_on: Callable[[str], Stack]
) -> None:
    # Given a worker whose URL is rediss://worker:…@127.0.0.1:<tls port>/0?ssl_ca_certs=<ca.pem>
    url = acl.url("worker", tls=True)
    assert url.startswith("rediss://worker:")
    assert "?ssl_ca_certs=" in url
    stack = stack_on(url)
    stack.worker()
    # When the producer enqueues over TLS too
    with acl.client("producer", tls=True) as producer:
        producer_client.publish(producer, [f.manufacturer(), f.order("TLS-1")])
    # Then the order is applied, and every connection of the worker user came in on the TLS port
    assert wait_until(lambda: _state(stack)[:2] == (["TLS-1"], 2), 30)
    assert _state(stack) == (["TLS-1"], 2, [])
    with acl.admin() as admin:
        clients: list[dict[str, Any]] = admin.client_list()
        ports = {c["laddr"].rpartition(":")[2] for c in clients if c["user"] == "worker"}
        assert ports == {str(acl.tls_port)}
        assert denials(admin, "worker") == set()


def test_a_wrong_password_is_refused_and_never_printed(
    acl: AclRedis, stack_on: Callable[[str], Stack]
) -> None:
    # Given a worker and `orderflow publish` with a wrong password in their URLs
    wrong = "Wr0ng-pw-canary-1f3a9c"
    stack = stack_on(acl.url("worker", password=wrong))
    # When they try to use Redis (the worker starting meanwhile)
    worker = stack.start("worker", "worker", "--processes", "1", "--threads", "1")
    cli_env = {**stack.env, "ORDERFLOW_REDIS_URL": acl.url("producer", password=wrong)}
    published = _publish_cli(
        cli_env, [{"type": "inventory.set", "data": {"sku": "A", "quantity": 1}}]
    )
    assert wait_until(lambda: "AuthenticationError" in worker.log_text(), 30), worker.log_text()
    worker.kill()
    # Then both are refused, nothing was enqueued or applied, and no password was printed
    assert published.returncode == 1
    assert "AuthenticationError" in published.stderr
    with acl.admin() as admin:
        assert admin.dbsize() == 0
    assert _state(stack) == ([], 0, [])
    printed = worker.log_text() + published.stdout + published.stderr
    assert [wrong in printed, acl.passwords["worker"] in printed] == [False, False]
