"""The seeded story soak: a day of about five envelopes per order (every message type,
duplicates, out-of-order arrivals, bad input, refusals) applied by real `orderflow worker`
processes on PostgreSQL; every effect counted where it lands, against the oracle.

`ORDERFLOW_SOAK_ORDERS` (default 300) and `ORDERFLOW_SOAK_SEED` choose the day."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Stack
from tests.fakes.stripe_server import StripeFake
from tests.services import PostgresServer
from tests.soak.bed import API_KEY, SETTINGS, Soak
from tests.soak.observe import EgressFollower
from tests.soak.story import generate
from workers.demo.smtp_sink import SmtpSink

pytestmark = pytest.mark.e2e
ORDERS = int(os.environ.get("ORDERFLOW_SOAK_ORDERS", "300"))
SEED = int(os.environ.get("ORDERFLOW_SOAK_SEED", "20"))
# (worker commands, processes each, schedulers): 2 x 2 consumers; 3 workers and 2 schedulers
VARIANTS = {"2x2": (1, 2, 1), "3w2s": (3, 1, 2)}


@pytest.fixture
def soak(stack: Stack, postgres_server: PostgresServer) -> Iterator[Soak]:
    with StripeFake.start(API_KEY, seed=SEED) as fake, SmtpSink.start() as sink, \
            EgressFollower(stack.settings.redis_url) as egress:  # fmt: skip
        yield Soak.wire(stack, fake, sink, egress, postgres_server.log)


@pytest.mark.parametrize("stack", [SETTINGS], indirect=True)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_seeded_day_has_every_effect_once_and_nothing_else(soak: Soak, variant: str) -> None:
    # Given worker processes of the variant's shape, and a seeded day of stories
    workers, processes_, schedulers = VARIANTS[variant]
    soak.start(workers, processes_, schedulers)
    day = generate(SEED, ORDERS, lambda amount: soak.fake.create_authorized_intent(amount, "eur"))
    # When its waves are published as producers publish them, each settled before the next
    soak.run(day)
    # Then every expected effect is there once, nothing else is, and nothing deadlocked
    verdict = soak.verdict()
    print(f"soak {variant}: {verdict.line()}")
    print(soak.summary(variant))
    assert verdict.details == [], "\n".join(verdict.details[:40])
    assert (verdict.missing, verdict.duplicated, verdict.unexpected, verdict.deadlocks) == (
        0, 0, 0, 0)  # fmt: skip
    assert verdict.delivery_limit == 0
    assert verdict.resent == 0  # nothing was killed
    assert verdict.effects == verdict.attempted
