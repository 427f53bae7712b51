"""Migrations: upgrade builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_upgrade_makes_a_missing_sqlite_folder(tmp_path: Path) -> None:
    # Given a data folder that does not exist yet
    path = tmp_path / "not" / "yet" / "orderflow.sqlite3"
    # When the embedded database is migrated
    migrate.upgrade(f"sqlite:///{path}")
    # Then the folder and the database are there, and current
    db = connect(f"sqlite:///{path}")
    try:
        assert path.is_file() is True
        assert migrate.is_current(db.engine) is True
    finally:
        db.dispose()


def test_0008_fingerprints_what_was_held_before(db_url: str) -> None:
    # Given a database at 0007 holding the same bytes twice, and a replayed copy
    migrate.upgrade(db_url, "0007")
    db = connect(db_url)
    rows = [("held", b"same"), ("held", b"same"), ("replayed", b"same"), ("held", b"other")]
    try:
        with db.engine.begin() as connection:
            for status, body in rows:
                connection.execute(
                    text("INSERT INTO quarantine (reason, detail, body, received_at, status) "
                         "VALUES ('not_json', '', :body, CURRENT_TIMESTAMP, :status)"),
                    {"body": body, "status": status},
                )  # fmt: skip
        # When it is upgraded
        migrate.upgrade(db_url)
        # Then the first held copy and the others have fingerprints, the held repeat does not
        with db.engine.connect() as connection:
            found = connection.execute(
                text("SELECT status, fingerprint, deliveries FROM quarantine ORDER BY id")
            ).all()
    finally:
        db.dispose()
    same, other = hashlib.sha256(b"same").hexdigest(), hashlib.sha256(b"other").hexdigest()
    assert [tuple(row) for row in found] == [
        ("held", same, 1), ("held", None, 1), ("replayed", same, 1), ("held", other, 1),
    ]  # fmt: skip
