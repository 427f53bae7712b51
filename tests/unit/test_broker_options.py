"""Options a producer puts on a queue message never change how our actors run it."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from workers.queue.broker import FOREIGN_OPTIONS, IgnoreProducerOptions


def test_run_options_on_a_message_are_dropped_before_any_middleware_reads_them() -> None:
    # Given a message whose producer asked for 1,000 retries and no time limit
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name="default",
        actor_name="run_job_default",
        args=(7,),
        kwargs={},
        options={
            "max_retries": 1000,
            "time_limit": 0,
            "on_success": "evil",
            "redis_message_id": "m1",
        },
    )
    # When our first middleware sees it
    IgnoreProducerOptions().before_process_message(StubBroker(), message)
    # Then only the broker's own bookkeeping remains
    assert message.options == {"redis_message_id": "m1"}
    assert {"max_retries", "time_limit", "on_success"} <= set(FOREIGN_OPTIONS)
