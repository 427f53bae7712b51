"""Migrations: upgrade builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from models.db import migrate
from models.db.engine import connect
from models.db.tables import Base

pytestmark = pytest.mark.integration


def test_upgrade_creates_every_table_and_matches_the_models(db_url: str) -> None:
    # When
    migrate.upgrade(db_url)
    db = connect(db_url)
    try:
        # Then
        tables = set(inspect(db.engine).get_table_names())
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        assert migrate.is_current(db.engine) is True
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    db = connect(db_url)
    try:
        assert migrate.is_current(db.engine) is True
    finally:
        db.dispose()
