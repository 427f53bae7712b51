"""Integration fixtures: a migrated database of each kind per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.db.engine import Database
from tests.support import migrated


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A fresh database at the newest migration: SQLite and PostgreSQL in turn."""
    database = migrated(db_url)
    yield database
    database.dispose()
