"""Alembic, configured in code: upgrade to head, and check whether a database is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from models.db.engine import ensure_sqlite_folder

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic Config pointing at our migrations and `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic interpolates %-signs in options; URL-encoded passwords contain them.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (a SQLite file's folder is made if it is missing)."""
    ensure_sqlite_folder(url)
    command.upgrade(alembic_config(url), revision)


def revisions(engine: Engine) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the database's revisions, the code's newest), each sorted; equal when it is current.

    Only reads `alembic_version` (no DDL), so the runtime role, which may not alter the
    schema, can run it.
    """
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(False)))
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return tuple(sorted(current)), tuple(sorted(script.get_heads()))


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration."""
    current, expected = revisions(engine)
    return current == expected
