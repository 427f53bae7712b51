"""Naming database trouble: which errors the ingress retries, and what a log line may show."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from workers.queue.ingress_retry import diagnose


@pytest.mark.parametrize(
    ("orig", "reason", "sqlstate"),
    [
        (psycopg.errors.DeadlockDetected("deadlock detected"), "deadlock", "40P01"),
        (psycopg.errors.SerializationFailure("could not serialize"), "serialization", "40001"),
        (psycopg.errors.LockNotAvailable("could not obtain lock"), "lock_timeout", "55P03"),
        (psycopg.errors.AdminShutdown("terminating connection"), "restart", "57P01"),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), "restart", "57P03"),
        (psycopg.errors.ConnectionFailure("connection failure"), "connection", "08006"),
        (psycopg.OperationalError("server closed the connection unexpectedly"), "connection", None),
        (sqlite3.OperationalError("database is locked"), "lock_timeout", None),
    ],
)
def test_transient_trouble_is_named_by_its_sqlstate(
    orig: Exception, reason: str, sqlstate: str | None
) -> None:
    trouble = diagnose(OperationalError("SELECT 1", {}, orig))
    assert (trouble.reason, trouble.sqlstate, trouble.transient) == (reason, sqlstate, True)


def test_other_database_errors_are_not_transient_and_show_no_sql_or_parameters() -> None:
    orig = psycopg.errors.UniqueViolation("duplicate key value\nDETAIL: Key (id)=(secret-id)")
    trouble = diagnose(IntegrityError("INSERT INTO t VALUES (%(x)s)", {"x": "card"}, orig))
    assert trouble == type(trouble)(
        "database", "IntegrityError/UniqueViolation", "23505", "duplicate key value"
    )
    assert not trouble.transient
