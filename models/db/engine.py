"""Engine and session factory; SQLite is tuned so that the embedded default stays correct."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Database:
    """An engine plus its session factory; one per process."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def is_sqlite(self) -> bool:
        """Whether writers must be serialized by SQLite's database lock."""
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        """Close pooled connections (call after fork and at exit)."""
        self.engine.dispose()


def _tune_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling starts transactions lazily and deferred; we take
    # over so every transaction is BEGIN IMMEDIATE: writers queue on the database lock
    # instead of failing later with "database is locked" on lock upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _cache_long_statements() -> None:
    """Let psycopg cache the parsing of our multi-row INSERTs.

    SQLAlchemy sends batched inserts as one statement of many rows; psycopg caches a parsed
    statement only below 4 KiB and 50 parameters, so it re-parsed each batch (about a tenth of
    an ingress worker's time). Our statements repeat in a few fixed shapes, so caching them
    costs little memory (psycopg keeps 128 at most).
    """
    from psycopg import _queries  # imported only when PostgreSQL is used

    if hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH"):
        _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, 1 << 20)
        _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, 1 << 16)


def ensure_sqlite_folder(url: str) -> None:
    """Make the folder of a SQLite file URL if it is missing (anything else: nothing)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def connect(url: str, *, pool_size: int = 5, echo: bool = False) -> Database:
    """Create the engine for a URL (SQLite file or PostgreSQL)."""
    if make_url(url).get_backend_name() == "sqlite":
        ensure_sqlite_folder(url)
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        _tune_sqlite(engine)
    else:
        _cache_long_statements()
        engine = create_engine(
            url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        # Many-row INSERTs without RETURNING go as multi-row statements too, as psycopg2's
        # dialect does by default: psycopg's pipelined executemany costs a round of protocol
        # messages per row (about a third of an ingress batch's time).
        engine.dialect.use_insertmanyvalues_wo_returning = True
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
