"""Creating and dropping databases on a PostgreSQL server, ours or one named by the environment."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from tests.services.common import LOOPBACK, ServiceError

_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _admin_connection(url: URL) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=url.host or LOOPBACK,
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname="postgres",
        connect_timeout=5,
        autocommit=True,
    )


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server of `server_url`; returns the new database's URL."""
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
    url = make_url(server_url)
    try:
        with _admin_connection(url) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise ServiceError(
            f"cannot create database {name} on {url.host}:{url.port}: "
            f"{type(error).__name__}: {error}"
        ) from error
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    """DROP the database of `database_url`, closing its sessions (only for ones we created)."""
    url = make_url(database_url)
    with _admin_connection(url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(str(url.database))
            )
        )
