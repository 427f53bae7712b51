"""Dialect-aware statements shared by repositories (INSERT ... ON CONFLICT DO NOTHING)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.db.base import Base


def insert_ignore(
    session: Session, model: type[Base], values: dict[str, Any], conflict_on: list[str]
) -> Any | None:
    """Insert one row unless `conflict_on` already exists; its primary key if this call did."""
    table = cast(Table, model.__table__)
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(values)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(values)
    else:  # pragma: no cover - only the two supported databases exist
        raise NotImplementedError(dialect)
    stmt = stmt.on_conflict_do_nothing(index_elements=conflict_on)
    stmt = stmt.returning(*table.primary_key.columns)
    return session.execute(stmt).scalar_one_or_none()
