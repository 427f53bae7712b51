"""Fuzzing `ingest_batch` on SQLite: one outcome per body; the quarantine gains one delivery of
exactly the refused bodies (and of released parked ones a handler refused); no handler bug; an
applied envelope delivered again is a duplicate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import strategies as st
from sqlalchemy import func, literal, select

from models.db.engine import Database
from models.db.machinery import ParkedMessage, QuarantinedMessage
from models.db.uow import UnitOfWork
from tasks.intake.ingest import Outcome, ingest_batch
from tests import factories as f
from tests.fuzz.budget import CALL_LIMIT_S, fuzz
from tests.fuzz.strategies import Draw, near_valid_bodies, signed_samples
from tests.support import migrated

NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
NUMBERS = ("M1", "M2", "M3")  # few, so messages meet their orders (or wait for them)
RESULTS = {"applied", "duplicate", "parked", "quarantined"}


@pytest.fixture
def db(fresh_sqlite_url: str) -> Iterator[Database]:
    """One migrated SQLite file for all examples of a test: state builds up across batches."""
    database = migrated(fresh_sqlite_url)
    yield database
    database.dispose()


@st.composite
def valid_bodies(draw: Draw) -> bytes:
    """A signed sample about one of a few orders: applied, parked, refused by a handler."""
    envelope = draw(signed_samples())
    data = envelope["data"]
    if "number" in data:
        data["number"] = draw(st.sampled_from(NUMBERS))
    if envelope["type"] == "order.placed":
        data["stripe_payment_intent_id"] = f"pi_{data['number']}"
    return f.body(f.resign(envelope))


@st.composite
def batches(draw: Draw) -> list[bytes]:
    """Valid, near-valid and random bodies, some of them delivered twice."""
    body = st.one_of(valid_bodies(), near_valid_bodies(), st.binary(max_size=64))
    bodies: list[bytes] = draw(st.lists(body, min_size=1, max_size=12))
    repeats = draw(st.lists(st.sampled_from(bodies), max_size=3))
    ordered: list[bytes] = draw(st.permutations([*bodies, *repeats]))
    return ordered


def _parked(db: Database) -> Counter[bytes]:
    with db.sessions() as session:
        return Counter(bytes(b) for b in session.scalars(select(ParkedMessage.body)))


def _held(db: Database, bodies: set[bytes]) -> tuple[int, Counter[bytes]]:
    """Refused deliveries held in all, and per body of `bodies`. A body refused again may be a
    new record or one more delivery counted on the held one: both count here."""
    quarantine = QuarantinedMessage.__table__
    deliveries = quarantine.c.get("deliveries", literal(1))
    query = select(quarantine.c.body, deliveries).where(quarantine.c.body.in_(bodies))
    with db.sessions() as session:
        total = int(session.scalar(select(func.coalesce(func.sum(deliveries), 0))) or 0)
        held: Counter[bytes] = Counter()
        for body, count in session.execute(query):
            held[bytes(body)] += int(count)
    return total, held


def _ingest(db: Database, batch: list[bytes]) -> list[Outcome]:
    started = time.perf_counter()
    with UnitOfWork(db, lambda: NOW) as uow:
        outcomes = ingest_batch(uow, batch, f.policy())
        uow.commit()
    assert time.perf_counter() - started < CALL_LIMIT_S * 5  # up to 15 envelopes
    return outcomes


# The database is shared by the examples on purpose (state builds up), hence the fixture.
@fuzz(examples=200, suppress=[HealthCheck.function_scoped_fixture])
@given(batch=batches())
def test_every_body_gets_one_outcome_and_the_quarantine_holds_exactly_the_refused(
    db: Database, batch: list[bytes]
) -> None:
    # Given the database as earlier batches left it
    parked_before = _parked(db)
    watched = set(batch) | set(parked_before)  # the only bodies the batch may quarantine
    total_before, held_before = _held(db, watched)
    # When a batch is ingested in one transaction
    outcomes = _ingest(db, batch)
    for outcome in outcomes:  # seen with pytest --hypothesis-show-statistics
        event(f"{outcome.result} {outcome.reason}".strip())
    # Then each body has exactly one outcome, in order, and none is a handler's bug
    assert len(outcomes) == len(batch)
    assert {o.result for o in outcomes} <= RESULTS
    assert [o.reason for o in outcomes if o.reason == "handler_error"] == []
    # And the quarantine holds one more delivery of each refused body, and besides them only
    # of parked bodies that a later message released and a handler then refused
    pairs = list(zip(batch, outcomes, strict=True))
    refused = Counter(body for body, o in pairs if o.result == "quarantined")
    total_after, held_after = _held(db, watched)
    gained = held_after - held_before
    assert total_after - total_before == gained.total()  # nothing else was quarantined
    assert refused <= gained
    released = parked_before + Counter(b for b, o in pairs if o.result == "parked") - _parked(db)
    assert gained - refused <= released
    # And delivered again, whatever was applied is a duplicate
    again = _ingest(db, batch)
    applied = [i for i, outcome in enumerate(outcomes) if outcome.result == "applied"]
    assert [again[i].result for i in applied] == ["duplicate"] * len(applied)
