"""The story soak under chaos: the same seeded day while worker processes are SIGKILLed three
times, Redis restarts once (losing what it held), PostgreSQL restarts once (fast shutdown, then
start), Stripe fails a fifth of the requests and the SMTP server is down for 30 s. Nothing may
be missing or duplicated; emails resent with the same Message-ID after a SIGKILL are reported
on a line of their own.

`ORDERFLOW_SOAK_CHAOS_ORDERS` (default 200) and `ORDERFLOW_SOAK_SEED` choose the day."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Stack
from tests.fakes.stripe_server import StripeFake
from tests.services import PostgresServer, RedisServer
from tests.soak.bed import API_KEY, SETTINGS, Soak
from tests.soak.observe import EgressFollower
from tests.soak.story import generate
from workers.demo.smtp_sink import SmtpSink

# Opt-in until an intermittent liveness fault it found is fixed (issue 20): in one CI run of
# three, three confirmations parked before their placements stayed parked for good although
# their orders existed (`wave 2 did not settle: unapplied=0 parked=3`). Run it with
# ORDERFLOW_SOAK_CHAOS=1; see docs/decisions.md, "The story soak".
pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(
        not os.environ.get("ORDERFLOW_SOAK_CHAOS"),
        reason="opt-in (ORDERFLOW_SOAK_CHAOS=1) until the parked-release fault is fixed",
    ),
]
ORDERS = int(os.environ.get("ORDERFLOW_SOAK_CHAOS_ORDERS", "200"))
SEED = int(os.environ.get("ORDERFLOW_SOAK_SEED", "20"))
SMTP_DOWN_S = 30.0
# (wave, seconds after its publication, what): the harm done, each once
PLAN = ((1, 1.0, "kill"), (2, 0.0, "smtp_down"), (2, 1.0, "redis_restart"), (3, 1.0, "kill"),
        (3, 3.0, "postgres_restart"), (4, 0.5, "kill"))  # fmt: skip


class Chaos:
    """Does the planned harm as the soak's waves run."""

    def __init__(self, soak: Soak, redis_server: RedisServer, postgres: PostgresServer) -> None:
        self.soak, self.redis, self.postgres = soak, redis_server, postgres
        self.done: list[str] = []
        self.kills: list[int] = []

    def __call__(self, wave: int, elapsed: float) -> None:
        for step, (at_wave, after_s, what) in enumerate(PLAN):
            if len(self.done) == step and wave == at_wave and elapsed >= after_s:
                self.done.append(what)
                getattr(self, what)(wave)

    def kill(self, _wave: int) -> None:
        self.kills.append(self.soak.kill_worker_process())

    def smtp_down(self, _wave: int) -> None:
        self.soak.sink.go_down()
        threading.Timer(SMTP_DOWN_S, self.soak.sink.come_up).start()

    def redis_restart(self, wave: int) -> None:
        """Redis restarts empty (no persistence here): like a producer without an answer, the
        test sends again whatever the database does not show as received."""
        self.redis.restart()
        self.soak.republish(wave)

    def postgres_restart(self, _wave: int) -> None:
        self.postgres.restart()


@pytest.fixture
def soak(stack: Stack, postgres_server: PostgresServer) -> Iterator[Soak]:
    with StripeFake.start(API_KEY, seed=SEED, fault_rate=0.2) as fake, SmtpSink.start() as sink, \
            EgressFollower(stack.settings.redis_url) as egress:  # fmt: skip
        yield Soak.wire(stack, fake, sink, egress, postgres_server.log)


@pytest.mark.parametrize("stack", [SETTINGS], indirect=True)
def test_a_seeded_day_under_chaos_loses_and_duplicates_nothing(
    soak: Soak, redis_server: RedisServer, postgres_server: PostgresServer
) -> None:
    # Given two worker processes of two ingress consumers each, a scheduler, a seeded day
    soak.start(1, 2, 1)
    day = generate(SEED, ORDERS, lambda amount: soak.fake.create_authorized_intent(amount, "eur"))
    chaos = Chaos(soak, redis_server, postgres_server)
    # When its waves are published while processes die, servers restart and fakes fail
    soak.run(day, chaos)
    # Then nothing is missing or duplicated
    verdict = soak.verdict()
    print(f"soak chaos: {verdict.line()} stripe_faults={len(soak.fake.faults.fired)}")
    print(f"soak chaos: {verdict.resent_line()}")
    print(soak.summary("chaos"))
    assert chaos.done == [what for *_, what in PLAN]
    assert len(set(chaos.kills)) == 3
    assert soak.workers[0].log_text().count("exited with -9; restarting") == 3
    assert (verdict.missing, verdict.duplicated) == (0, 0), "\n".join(verdict.details[:40])
    assert verdict.delivery_limit == 0
