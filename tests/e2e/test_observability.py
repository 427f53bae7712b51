"""Metrics and logs of real processes: `orderflow worker` (two processes, one aggregated
endpoint) counts exactly what it applied, and its JSON log lines name each envelope;
`orderflow scheduler` and `orderflow webhooks` serve their own metrics."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from models.db.commerce import Manufacturer, Order
from models.db.machinery import QuarantinedMessage
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.fakes import stripe_events as se
from tests.support import wait_until
from workers import processes
from workers.queue import client as producer
from workers.queue.streams import INGRESS_STREAM

pytestmark = pytest.mark.e2e
SIGNED = {"signing_keys": f.SIGNING_KEYS_SETTING}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def scrape(port: int) -> Samples:
    """Every sample of the endpoint, keyed by name and sorted labels; empty when it is down."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    except httpx.HTTPError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric, by labels."""
    return {labels: value for (n, labels), value in samples.items() if n == name}


def _count(stack: Stack, model: type) -> int:
    with stack.rt.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_a_worker_counts_exactly_what_it_applied_and_logs_each_envelope(stack: Stack) -> None:
    # Given `orderflow worker` with two processes, metrics on a free port, debug logs
    port = _free_port()
    stack.env["ORDERFLOW_METRICS_PORT"] = str(port)
    proc = stack.start("worker", "worker", "--processes", "2", "--threads", "2",
                       "--log-level", "DEBUG")  # fmt: skip
    assert wait_until(lambda: proc.log_text().count(" ready: ") >= 2, 90), proc.log_text()
    client = redis.Redis.from_url(stack.settings.redis_url)
    maker = f.manufacturer()
    producer.publish(client, [maker])
    assert wait_until(lambda: _count(stack, Manufacturer) == 1, 30)
    # When 5 orders, one of them again, a non-JSON entry and a tampered order are published
    orders = [f.order(f"OBS-{i}") for i in range(5)]
    tampered = f.order("OBS-BAD")
    tampered["data"]["currency"] = "USD"
    pipe = client.pipeline(transaction=False)
    for body in [*map(f.body, orders), f.body(orders[0]), b"{not json", f.body(tampered)]:
        pipe.xadd(INGRESS_STREAM, {"envelope": body})
    pipe.execute()
    assert wait_until(
        lambda: _count(stack, Order) == 5 and _count(stack, QuarantinedMessage) == 2, 60
    )
    expected = {
        (("outcome", "applied"), ("type", "manufacturer.upserted")): 1.0,
        (("outcome", "applied"), ("type", "order.placed")): 5.0,
        (("outcome", "duplicate"), ("type", "order.placed")): 1.0,
        (("outcome", "quarantined"), ("type", "order.placed")): 1.0,
        (("outcome", "quarantined"), ("type", "unknown")): 1.0,
    }
    wait_until(lambda: named(scrape(port), "orderflow_messages_total") == expected, 30)
    samples = scrape(port)
    log_lines = _json_lines(proc.log_text())
    # Then the aggregated endpoint counts each outcome exactly once, over both processes
    assert named(samples, "orderflow_messages_total") == expected
    assert named(samples, "orderflow_quarantined_total") == {
        (("reason", "not_json"),): 1.0,
        (("reason", "signature_invalid"),): 1.0,
    }
    assert samples[("orderflow_worker_processes", ())] == 2.0
    assert samples[("orderflow_redis_up", ())] == 1.0
    assert samples[("orderflow_ingress_stream_length", ())] == 0.0
    assert samples[("orderflow_handler_seconds_count", (("type", "order.placed"),))] >= 1.0
    # And every line of its log is JSON; each envelope has a line with its fields
    lines = [x for x in log_lines if str(x.get("event")).startswith("envelope ")]
    named_lines = {
        (x["envelope_id"], x["type"], x.get("order"), x["correlation_id"], x["outcome"], x["level"])
        for x in lines
        if "envelope_id" in x
    }
    assert named_lines == {
        *((o["id"], "order.placed", f"OBS-{i}", o["id"], "applied", "debug")
          for i, o in enumerate(orders)),
        (orders[0]["id"], "order.placed", "OBS-0", orders[0]["id"], "duplicate", "info"),
        (tampered["id"], "order.placed", "OBS-BAD", tampered["id"], "quarantined", "warning"),
        (maker["id"], "manufacturer.upserted", None, maker["id"], "applied", "debug"),
    }  # fmt: skip
    assert [x["reason"] for x in lines if "envelope_id" not in x] == ["not_json"]
    assert proc.terminate() == 0


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_the_scheduler_and_the_webhook_endpoint_serve_their_own_metrics(stack: Stack) -> None:
    # Given `orderflow scheduler` and `orderflow webhooks`, each with its own metrics port
    scheduler_port, webhook_port, hook_metrics_port = _free_port(), _free_port(), _free_port()
    scheduler_env = {**stack.env, "ORDERFLOW_METRICS_PORT": str(scheduler_port)}
    webhook_env = {
        **stack.env,
        "ORDERFLOW_METRICS_PORT": str(hook_metrics_port),
        "ORDERFLOW_WEBHOOK_PORT": str(webhook_port),
        "ORDERFLOW_STRIPE_WEBHOOK_SECRET": se.WEBHOOK_SECRET,
    }
    for name, args, env in (("scheduler", ["scheduler"], scheduler_env),
                            ("webhooks", ["webhooks"], webhook_env)):  # fmt: skip
        stack.started.append(processes.start(name, args, env, stack.logs))
    scheduler, webhooks = stack.started
    relay_ok = ("orderflow_scheduler_ticks_total", (("job", "outbox_relay"), ("outcome", "ok")))
    assert wait_until(lambda: scrape(scheduler_port).get(relay_ok, 0) >= 2, 90), (
        scheduler.log_text()
    )
    assert wait_until(lambda: "Uvicorn running" in webhooks.log_text(), 60), webhooks.log_text()
    # When a badly signed event is posted to the webhook endpoint, and a GET
    with httpx.Client(base_url=f"http://127.0.0.1:{webhook_port}", trust_env=False) as http:
        refused = http.post("/stripe/webhook", content=b"{}", headers={"Stripe-Signature": "t=1"})
        wrong_method = http.get("/stripe/webhook")
    # Then each endpoint serves its own figures
    hooks = scrape(hook_metrics_port)
    assert (refused.status_code, wrong_method.status_code) == (400, 405)
    assert named(hooks, "orderflow_webhook_requests_total") == {
        (("status", "400"),): 1.0,
        (("status", "405"),): 1.0,
    }
    ticks = scrape(scheduler_port)
    stamp = ("orderflow_scheduler_last_success_timestamp_seconds", (("job", "outbox_relay"),))
    assert ticks[stamp] > 0
    assert named(ticks, "orderflow_webhook_requests_total") == {}
    assert [scheduler.terminate(), webhooks.terminate(timeout=30)] == [0, 0]
