"""Envelopes enqueued as outside producers would, applied by real worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from models.db.commerce import Order
from models.db.machinery import InboxEntry, QuarantinedMessage
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.support import wait_until
from workers.queue import client as producer
from workers.queue.streams import INGRESS_STREAM

pytestmark = pytest.mark.e2e
SIGNED = {"signing_keys": f.SIGNING_KEYS_SETTING, "ingress_claim_idle_s": 3}


def _count(stack: Stack, model: type) -> int:
    with stack.rt.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _reasons(stack: Stack) -> list[str]:
    with stack.rt.db.sessions() as session:
        query = select(QuarantinedMessage.reason).order_by(QuarantinedMessage.id)
        return list(session.scalars(query))


def _redis(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.settings.redis_url)


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_one_plain_xadd_as_documented_enqueues_an_envelope(stack: Stack) -> None:
    # Given a worker
    stack.worker()
    # When a producer runs the documented command: XADD orderflow:ingress * envelope <json>
    raw: Any = _redis(stack)  # execute_command is untyped: any command, as redis-cli sends it
    raw.execute_command("XADD", INGRESS_STREAM, "*", "envelope", f.body(f.manufacturer()))
    raw.execute_command("XADD", INGRESS_STREAM, "*", "envelope", f.body(f.order("RAW-1")))
    # Then the order is applied
    assert wait_until(lambda: _count(stack, Order) == 1, 30)
    assert _reasons(stack) == []


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_bad_input_is_quarantined_while_200_valid_messages_are_applied(stack: Stack) -> None:
    # Given a worker and a stream with five bad entries among 200 good ones
    stack.worker()
    client = _redis(stack)
    producer.publish(client, [f.manufacturer()])
    tampered = f.order("BAD-SIG")
    tampered["data"]["currency"] = "USD"
    wrong_version = f.order("BAD-V")
    wrong_version["version"] = 2
    big_note = "x" * (300 * 1024)
    good = [f.order(f"G{i}") for i in range(200)]
    pipe = client.pipeline(transaction=False)
    for index, item in enumerate(good):
        pipe.xadd(INGRESS_STREAM, {"envelope": f.body(item)})
        if index == 100:
            pipe.xadd(INGRESS_STREAM, {"envelope": b"{not json"})
            pipe.xadd(INGRESS_STREAM, {"envelope": f.body(wrong_version)})
            pipe.xadd(INGRESS_STREAM, {"envelope": json.dumps({"pad": big_note}).encode()})
            pipe.xadd(INGRESS_STREAM, {"envelope": f.body(tampered)})
            pipe.xadd(
                INGRESS_STREAM, {"envelope": f.body(f.envelope("order.shipped", signed=False))}
            )
    pipe.execute()
    # Then
    assert wait_until(lambda: _count(stack, Order) == 200 and len(_reasons(stack)) == 5, 60)
    assert sorted(_reasons(stack)) == sorted(
        ["not_json", "unknown_version", "oversized", "signature_invalid", "signature_missing"]
    )
    assert client.xlen(INGRESS_STREAM) == 0


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_a_sigkilled_consumer_loses_and_duplicates_nothing(stack: Stack) -> None:
    # Given 3,000 orders on the stream and a worker applying them
    client = _redis(stack)
    producer.publish(client, [f.manufacturer()])
    producer.publish(client, [f.order(f"K{i}") for i in range(3000)])
    first = stack.worker("worker-1")
    assert wait_until(lambda: _count(stack, Order) >= 300, 60)
    # When it is killed mid-stream and another worker starts
    first.kill()
    at_kill = _count(stack, Order)
    stack.worker("worker-2")
    # Then every order is applied exactly once
    assert wait_until(lambda: _count(stack, Order) == 3000 and client.xlen(INGRESS_STREAM) == 0, 90)
    print(f"consumer killed at {at_kill}/3000 applied; all applied once after restart")
    assert at_kill < 3000
    assert _count(stack, Order) == 3000
    assert _count(stack, InboxEntry) == 3001
    assert _reasons(stack) == []


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_a_message_published_before_its_order_is_applied_when_the_order_arrives(
    stack: Stack,
) -> None:
    stack.worker()
    client = _redis(stack)
    producer.publish(client, [f.manufacturer(), f.envelope("order.confirmed", number="LATE-1")])
    assert wait_until(lambda: _count(stack, InboxEntry) == 2, 30)
    assert _count(stack, Order) == 0
    producer.publish(client, [f.order("LATE-1")])
    assert wait_until(lambda: _count(stack, Order) == 1, 30)

    def confirmed() -> bool:
        with stack.rt.db.sessions() as session:
            order = session.scalars(select(Order)).one()
            return order.confirmation_status == "confirmed"

    assert wait_until(confirmed, 30)


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_orderflow_publish_completes_signs_and_enqueues_json_lines(
    stack: Stack, tmp_path: Path
) -> None:
    # Given a file with unsigned envelopes lacking id and time, and one broken line
    manufacturer = f.manufacturer(signed=False)
    order = f.order("PUB-1", signed=False)
    for raw in (manufacturer, order):
        del raw["id"], raw["occurred_at"]
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(manufacturer) + "\n{broken\n" + json.dumps(order) + "\n")
    # When
    result = subprocess.run(
        [sys.executable, "-m", "workers", "publish", str(source)],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then the good lines are signed and applied, the bad one reported by number
    assert result.returncode == 1
    assert "line 2: not JSON" in result.stderr
    assert "published 2 envelopes" in result.stdout
    stack.worker()
    assert wait_until(lambda: _count(stack, Order) == 1, 30)
    assert _reasons(stack) == []
