"""Integration fixtures: a migrated database of each kind per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.db.engine import Database
from tests.integration.stripe_desk import Desk, running_desk
from tests.support import migrated


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A fresh database at the newest migration: SQLite and PostgreSQL in turn."""
    database = migrated(db_url)
    yield database
    database.dispose()


@pytest.fixture
def desk(db: Database) -> Iterator[Desk]:
    """A payment desk: `db`, a Stripe fake over HTTP, the payment jobs run in process."""
    yield from running_desk(db)
