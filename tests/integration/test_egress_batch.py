"""The batch publish job appends each event of a batch once, however often it runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from tasks.outbox.egress import PUBLISH_BATCH_JOB, egress_jobs
from tasks.outbox.jobs import JobRegistry
from workers.adapters.egress_stream import RedisStreamAppender, sent_marker
from workers.queue.streams import EGRESS_STREAM

pytestmark = pytest.mark.integration


def _event(n: int) -> dict[str, Any]:
    return {"id": f"00000000-0000-4000-8000-{n:012d}", "type": "paid_backlog.created",
            "version": 1, "occurred_at": "2026-03-04T12:00:00+00:00",
            "data": {"number": f"EB{n}", "skus": [], "job_id": 1}}  # fmt: skip


def test_a_batch_run_twice_appends_each_event_once(redis_url: str) -> None:
    # Given the batch job bound to our Redis, and a batch of three events
    client = redis.Redis.from_url(redis_url)
    events = [_event(n) for n in (1, 2, 3)]
    first_id = client.xadd(EGRESS_STREAM, {"event": "{}"})  # where our entries start
    spec = JobRegistry(egress_jobs(RedisStreamAppender(client, 1000))).get(PUBLISH_BATCH_JOB.name)
    assert spec.external is not None
    try:
        # When it runs, then runs again (a re-delivery after a crash)
        spec.external(lambda: pytest.fail("the batch job needs no database"), {"events": events})
        spec.external(lambda: pytest.fail("the batch job needs no database"), {"events": events})
        # Then each event is on the stream once, in order
        entries: Any = client.xrange(EGRESS_STREAM, min=first_id)
        appended = [json.loads(fields[b"event"]) for _, fields in entries[1:]]
        assert [e["data"]["number"] for e in appended] == ["EB1", "EB2", "EB3"]
    finally:
        # Only what this test added: the server may be shared
        entries = client.xrange(EGRESS_STREAM, min=first_id)
        client.xdel(EGRESS_STREAM, *[entry_id for entry_id, _ in entries])
        client.delete(*[sent_marker(e["id"]) for e in events])
        client.close()
