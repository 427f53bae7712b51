"""docs/deploy/postgres-roles.sql on a real PostgreSQL: the owner migrates, the runtime role does
the work, and the runtime role can change no table (SQLSTATE 42501, insufficient privilege)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from models.db import migrate
from models.db.commerce import Manufacturer, Order, OrderLine
from models.db.engine import Database, connect
from models.db.machinery import InboxEntry, QuarantinedMessage
from tests import factories as f
from tests import support
from tests.conftest import unavailable
from workers.runtime import prepare_database
from workers.settings import Settings

pytestmark = pytest.mark.integration
ROLES_SQL = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "postgres-roles.sql"
INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class Roles:
    """The two roles of the SQL file (renamed per test: roles are shared by the whole server)."""

    owner: str
    runtime: str
    owner_url: str
    runtime_url: str


def _superuser(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def _as(url: str, role: str) -> str:
    # The test server trusts loopback connections, so the password is only for the URL's form.
    parsed = make_url(url).set(username=role, password="not-checked-here")
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
def roles(fresh_postgres_url: str) -> Iterator[Roles]:
    """The SQL file run as a superuser on a fresh database, with this test's role names."""
    tag = uuid.uuid4().hex[:8]
    owner, runtime = f"orderflow_owner_{tag}", f"orderflow_runtime_{tag}"
    script = ROLES_SQL.read_text(encoding="utf-8")
    script = script.replace("orderflow_owner", owner).replace("orderflow_runtime", runtime)
    try:
        with _superuser(fresh_postgres_url) as conn:
            conn.execute(script.encode())  # no parameters: run as one multi-statement script
    except psycopg.errors.InsufficientPrivilege:
        unavailable("the roles test needs a PostgreSQL superuser (ORDERFLOW_TEST_DATABASE_URL)")
    yield Roles(owner, runtime, _as(fresh_postgres_url, owner), _as(fresh_postgres_url, runtime))
    with _superuser(fresh_postgres_url) as conn:
        # One role at a time: both roles in one DROP OWNED trip over their shared default ACL.
        for role in (runtime, owner):
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _sqlstate(engine: Engine, statement: str) -> str | None:
    """The SQLSTATE `statement` fails with (None when it succeeds; it is rolled back anyway)."""
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    except DBAPIError as error:
        return getattr(error.orig, "sqlstate", None)
    return None


def _count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _head() -> str:
    heads = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1
    return str(heads[0])


def test_the_runtime_role_applies_messages_but_cannot_change_the_schema(roles: Roles) -> None:
    # Given the schema migrated by the owner role
    migrate.upgrade(roles.owner_url)
    db = connect(roles.runtime_url)
    try:
        # When the runtime role tries to change tables or empty one
        refused = {
            statement: _sqlstate(db.engine, statement)
            for statement in (
                "ALTER TABLE orders ADD COLUMN intruder integer",
                "DROP TABLE orders",
                "CREATE TABLE intruder (id integer)",
                "TRUNCATE orders",
                "CREATE TEMPORARY TABLE intruder (id integer)",
            )
        }
        # And does a worker's real work: it starts, then applies an order
        prepare_database(Settings(database_url=roles.runtime_url, _env_file=None))
        outcomes = support.feed(
            db, [f.body(f.manufacturer()), f.body(f.order("ROLE-1"))], f.policy(), support.now()
        )
        # Then every change to the schema was refused, and nothing of it happened
        assert refused == {
            "ALTER TABLE orders ADD COLUMN intruder integer": INSUFFICIENT_PRIVILEGE,
            "DROP TABLE orders": INSUFFICIENT_PRIVILEGE,
            "CREATE TABLE intruder (id integer)": INSUFFICIENT_PRIVILEGE,
            "TRUNCATE orders": INSUFFICIENT_PRIVILEGE,
            "CREATE TEMPORARY TABLE intruder (id integer)": INSUFFICIENT_PRIVILEGE,
        }
        columns = {column["name"] for column in inspect(db.engine).get_columns("orders")}
        assert "intruder" not in columns
        assert "intruder" not in inspect(db.engine).get_table_names()
        with db.engine.connect() as connection:
            owners = connection.execute(
                text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
            assert list(owners) == [roles.owner]
        # and the work was done, exactly once
        assert [o.result for o in outcomes] == ["applied", "applied"]
        assert (_count(db, Manufacturer), _count(db, Order), _count(db, OrderLine)) == (1, 1, 2)
        assert (_count(db, InboxEntry), _count(db, QuarantinedMessage)) == (2, 0)
    finally:
        db.dispose()


def test_processes_refuse_a_schema_behind_and_the_runtime_role_cannot_migrate_it(
    roles: Roles,
) -> None:
    # Given a schema one migration behind the code, migrated by the owner
    head = _head()
    previous = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_revision(head)
    assert previous is not None
    assert isinstance(previous.down_revision, str)
    migrate.upgrade(roles.owner_url, previous.down_revision)
    runtime = Settings(database_url=roles.runtime_url, _env_file=None)
    # When a process starts as the runtime role
    with pytest.raises(SystemExit) as refused:
        prepare_database(runtime)
    # Then it refuses, naming both revisions and who must migrate
    assert refused.value.code == (
        f"the database schema is at {previous.down_revision}, expected {head}: "
        "run `orderflow db upgrade` as the owner role"
    )
    # And the runtime role cannot migrate: the upgrade is refused and rolled back
    with pytest.raises(DBAPIError) as denied:
        migrate.upgrade(roles.runtime_url)
    assert getattr(denied.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE
    engine = create_engine(roles.runtime_url)
    try:
        assert migrate.revisions(engine) == ((previous.down_revision,), (head,))
    finally:
        engine.dispose()
    # Until the owner migrates: then the runtime role starts
    migrate.upgrade(roles.owner_url)
    prepare_database(runtime)
