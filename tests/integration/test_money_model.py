"""The model-based money test (issue 19): every inbound message type, duplicated, held back and
about orders not there yet, through the real ingress on SQLite and PostgreSQL with the Stripe
fake over HTTP; every money invariant is checked after every step.

The CI tier runs a bounded, derandomized number of examples. A long run is opted into with
ORDERFLOW_MODEL_EXAMPLES / ORDERFLOW_MODEL_STEPS (and is then randomized); its figures go to
bench/RESULTS.md."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from models.db.engine import Database
from tests.integration.money_bed import MoneyBed, running_bed
from tests.integration.money_model import MoneyModel

pytestmark = pytest.mark.integration

CI_EXAMPLES, CI_STEPS = 100, 40


def _settings() -> settings:
    examples = os.environ.get("ORDERFLOW_MODEL_EXAMPLES")
    steps = os.environ.get("ORDERFLOW_MODEL_STEPS")
    return settings(
        max_examples=int(examples or CI_EXAMPLES),
        stateful_step_count=int(steps or CI_STEPS),
        deadline=None,
        derandomize=examples is None and steps is None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture
def bed(db: Database) -> Iterator[MoneyBed]:
    yield from running_bed(db, db.engine.dialect.name)


def test_money_invariants_hold_after_every_step(bed: MoneyBed) -> None:
    # Given a desk on a real database and the Stripe fake over HTTP
    MoneyModel.bed = bed
    # When hypothesis sends messages in any order, any number of times, and runs the jobs
    run_state_machine_as_test(MoneyModel, settings=_settings())
    # Then no step broke an invariant (the machine asserts after each), and we say how much ran
    assert bed.tally.examples > 0
    print(bed.report())
    print(f"money model outcomes: {bed.tally.outcomes}; job errors: {bed.tally.job_errors}")
