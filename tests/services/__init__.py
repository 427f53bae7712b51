"""Real Redis and PostgreSQL servers for the test bed and bench, on free loopback ports.

Each server is our own child process in a temp dir (never daemonized); its process id is
checked after start. The public names of the former `tests/services.py` are re-exported here.
"""

from __future__ import annotations

from tests.services.bed import DATABASE_URL_ENV, REDIS_URL_ENV, ServiceBed
from tests.services.common import (
    LOOPBACK,
    Account,
    PortTakenError,
    ServiceError,
    free_port,
    unprivileged_account,
)
from tests.services.databases import create_database, drop_database
from tests.services.postgres_server import TEST_DATABASE, PostgresServer, postgres_bin_dir
from tests.services.redis_server import RedisServer, redis_executable, verify_redis_process

__all__ = [
    "DATABASE_URL_ENV",
    "LOOPBACK",
    "REDIS_URL_ENV",
    "TEST_DATABASE",
    "Account",
    "PortTakenError",
    "PostgresServer",
    "RedisServer",
    "ServiceBed",
    "ServiceError",
    "create_database",
    "drop_database",
    "free_port",
    "postgres_bin_dir",
    "redis_executable",
    "unprivileged_account",
    "verify_redis_process",
]
