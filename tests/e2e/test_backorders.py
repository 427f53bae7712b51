"""Backorders end to end: envelopes XADDed as a producer would, applied by a real worker.

Refusals are visible in the quarantine with their reason; a restock's release reaches the
egress stream as `fulfillment.submitted`, once per released backorder.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from models.db.commerce import Inventory, Order, StockReservation
from models.db.machinery import Notification, QuarantinedMessage
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.support import wait_until
from workers.queue import client as producer
from workers.queue.streams import EGRESS_STREAM

pytestmark = pytest.mark.e2e
SIGNED = {"signing_keys": f.SIGNING_KEYS_SETTING}
LINES = [
    {"sku": "DRILL", "quantity": 2, "unit_price": 5000, "is_insert": False},
    {"sku": "LEAFLET", "quantity": 1, "unit_price": 0, "is_insert": True},
]


def _redis(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.settings.redis_url)


def _state(stack: Stack) -> dict[str, Any]:
    with stack.rt.db.sessions() as session:

        def count(model: type) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        return {
            "orders": sorted(session.scalars(select(Order.number))),
            "quarantine": sorted(session.scalars(select(QuarantinedMessage.reason))),
            "reserved": {i.sku: i.reserved for i in session.scalars(select(Inventory))},
            "reservations": count(StockReservation),
            "notifications": count(Notification),
        }


def _egress(stack: Stack) -> list[dict[str, Any]]:
    # redis-py types replies for RESP2 and RESP3 at once; we speak RESP2: [(id, fields)].
    entries: Any = _redis(stack).xrange(EGRESS_STREAM)
    return [json.loads(fields[b"event"]) for _, fields in entries]


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_every_split_refusal_is_quarantined_with_its_reason_and_changes_nothing(
    stack: Stack,
) -> None:
    # Given a worker, and three orders of 2 drills and a leaflet insert
    stack.worker()
    client = _redis(stack)
    orders = [f.order(n, lines=LINES) for n in ("R-INSERT", "R-ALL", "R-NONE")]
    producer.publish(client, [f.manufacturer(), *orders])
    assert wait_until(lambda: len(_state(stack)["orders"]) == 3, 30)
    # When each split is asked for with stock that refuses it
    refusals = [
        ("R-INSERT", 5, 0, "only_inserts_out_of_stock"),
        ("R-ALL", 5, 5, "nothing_out_of_stock"),
        ("R-NONE", 0, 5, "nothing_in_stock"),
    ]
    for number, drills, leaflets, reason in refusals:
        producer.publish(client, [
            f.envelope("inventory.set", sku="DRILL", quantity=drills),
            f.envelope("inventory.set", sku="LEAFLET", quantity=leaflets),
            f.envelope("order.split_requested", number=number),
        ])  # fmt: skip
        assert wait_until(lambda: len(_state(stack)["quarantine"]) >= 1, 30)
        stack_state = _state(stack)
        # Then it lands in the quarantine with its reason, and nothing was split or reserved
        assert stack_state["orders"] == ["R-ALL", "R-INSERT", "R-NONE"]
        assert stack_state["quarantine"] == [reason]
        assert (stack_state["reservations"], stack_state["notifications"]) == (0, 0)
        _drop_quarantine(stack)
    # And each refusal reached the producers on the egress stream, and nothing else did
    assert wait_until(lambda: len(_egress(stack)) >= len(refusals), 30)
    # (published by jobs that run side by side: in any order)
    events = sorted((e["type"], e["data"]["number"], e["data"]["reason"]) for e in _egress(stack))
    assert events == sorted(("message.refused", number, reason) for number, *_, reason in refusals)


def _drop_quarantine(stack: Stack) -> None:
    with stack.rt.db.sessions() as session, session.begin():
        session.delete(session.scalars(select(QuarantinedMessage)).one())


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_a_restock_submits_each_released_backorder_once(stack: Stack) -> None:
    # Given three orders split so that 2 drills each wait on a backorder (an insert moves too)
    stack.worker()
    client = _redis(stack)
    lines = [{**LINES[0], "sku": "PAD", "quantity": 1}, *LINES]
    producer.publish(client, [
        f.manufacturer(),
        f.envelope("inventory.set", sku="PAD", quantity=3),
        *[f.order(f"E{i}", lines=lines, placed_at=f"2026-03-0{i}T09:00:00Z") for i in (1, 2, 3)],
        *[f.envelope("order.split_requested", number=f"E{i}") for i in (1, 2, 3)],
    ])  # fmt: skip
    assert wait_until(lambda: len(_state(stack)["orders"]) == 6, 30), _state(stack)
    # When 4 drills and 5 leaflets arrive, delivered twice (the second delivery is a duplicate)
    leaflets = f.envelope("inventory.received", sku="LEAFLET", quantity=5)
    drills = f.envelope("inventory.received", sku="DRILL", quantity=4)
    producer.publish(client, [leaflets, drills, leaflets, drills])
    # Then the two oldest backorders are released and submitted, once each
    assert wait_until(lambda: len(_egress(stack)) == 2, 30), _egress(stack)
    # Events are appended by parallel jobs: the stream's order is not the release order.
    events = sorted(_egress(stack), key=lambda e: str(e["data"]["number"]))
    assert [(e["type"], e["data"]["number"], e["data"]["parent_number"]) for e in events] == [
        ("fulfillment.submitted", "E1-backorder", "E1"),
        ("fulfillment.submitted", "E2-backorder", "E2"),
    ]
    assert events[0]["data"]["lines"] == [
        {"sku": "DRILL", "quantity": 2}, {"sku": "LEAFLET", "quantity": 1},
    ]  # fmt: skip
    state = _state(stack)
    assert state["reserved"] == {"PAD": 3, "DRILL": 4, "LEAFLET": 2}
    assert state["quarantine"] == []
    # 3 split emails + 2 release emails
    assert state["notifications"] == 5
