"""Dialect-aware statements shared by repositories (INSERT ... ON CONFLICT DO NOTHING)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.db.base import Base


def table_of(model: type[Base]) -> Table:
    """The Core table behind a mapped class (Core statements skip the ORM's bulk machinery)."""
    return cast(Table, model.__table__)


def insert_ignore(
    session: Session, model: type[Base], values: dict[str, Any], conflict_on: list[str]
) -> Any | None:
    """Insert one row unless `conflict_on` already exists; its primary key if this call did."""
    inserted = insert_many_ignore(session, model, [values], conflict_on)
    return inserted[0] if inserted else None


def dialect_insert(session: Session, table: Table) -> Any:
    """INSERT with ON CONFLICT support for the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(dialect)  # pragma: no cover - only the two supported databases


def upsert_many(
    session: Session,
    model: type[Base],
    rows: list[dict[str, Any]],
    conflict_on: list[str],
    update: list[str],
) -> None:
    """Insert rows, updating `update` columns where `conflict_on` exists (batched, cached).

    Rows must have distinct conflict keys: PostgreSQL refuses to touch one row twice.
    """
    if not rows:
        return
    table = table_of(model)
    stmt = dialect_insert(session, table)
    # RETURNING makes SQLAlchemy send multi-row statements; without it an upsert goes row by
    # row (its batching is off for ON CONFLICT DO UPDATE, safe here: the keys are distinct).
    stmt = stmt.on_conflict_do_update(
        index_elements=conflict_on, set_={column: stmt.excluded[column] for column in update}
    ).returning(*table.primary_key.columns)
    session.execute(stmt, rows).close()


def insert_many_ignore(
    session: Session, model: type[Base], rows: list[dict[str, Any]], conflict_on: list[str]
) -> list[Any]:
    """Insert rows, skipping conflicts; the primary keys of those inserted.

    Rows go as parameters of one cached statement (SQLAlchemy batches them into multi-row
    INSERTs), never as values compiled into a new statement per call.
    """
    if not rows:
        return []
    table = table_of(model)
    stmt = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=conflict_on)
        .returning(*table.primary_key.columns)
    )
    return list(session.execute(stmt, rows).scalars())
