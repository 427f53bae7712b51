"""ServiceBed: the servers of one test session or bench run, from the environment or our own.

`ORDERFLOW_TEST_REDIS_URL` / `ORDERFLOW_TEST_DATABASE_URL` name external (loopback) servers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tests.services.common import ServiceError
from tests.services.databases import create_database
from tests.services.postgres_server import PostgresServer
from tests.services.redis_server import RedisServer

REDIS_URL_ENV = "ORDERFLOW_TEST_REDIS_URL"
DATABASE_URL_ENV = "ORDERFLOW_TEST_DATABASE_URL"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_T = TypeVar("_T")


class _Once(Generic[_T]):
    """Runs a start-up at most once; later calls get the same result or the same error."""

    def __init__(self, start: Callable[[], _T]) -> None:
        self._start = start
        self._value: _T | None = None
        self._error: ServiceError | None = None

    @property
    def value(self) -> _T | None:
        return self._value

    def get(self) -> _T:
        if self._error is not None:
            raise self._error
        if self._value is None:
            try:
                self._value = self._start()
            except ServiceError as error:
                self._error = error
                raise
        return self._value


def _loopback_only(name: str, value: str) -> str:
    host = urlsplit(value).hostname
    if host not in _LOOPBACK_HOSTS:
        # Only the host is echoed: the URL may hold a password.
        raise ServiceError(f"{name} must point at a loopback address, not host {host!r}")
    return value


class ServiceBed:
    """The servers of one test session or bench run: named by the environment, else ours."""

    def __init__(self, workdir: Path, environ: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self._environ = os.environ if environ is None else environ
        self._redis = _Once(lambda: RedisServer.start(self.workdir / "redis"))
        self._postgres = _Once(lambda: PostgresServer.start(self.workdir / "postgres"))

    @property
    def external_redis_url(self) -> str | None:
        return self._environ.get(REDIS_URL_ENV) or None

    @property
    def external_database_url(self) -> str | None:
        value = self._environ.get(DATABASE_URL_ENV) or None
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError as error:
            raise ServiceError(f"{DATABASE_URL_ENV} is not a database URL") from error
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is our driver
        return url.render_as_string(hide_password=False)

    def redis_url(self) -> str:
        external = self.external_redis_url
        if external is not None:
            return _loopback_only(REDIS_URL_ENV, external)
        return self._redis.get().url

    def postgres_url(self) -> str:
        external = self.external_database_url
        if external is not None:
            return _loopback_only(DATABASE_URL_ENV, external)
        return self._postgres.get().url

    def redis_server(self) -> RedisServer:
        """Our own Redis, for tests that restart or kill it."""
        if self.external_redis_url is not None:
            raise ServiceError(
                f"{REDIS_URL_ENV} is set: this test restarts or kills Redis, "
                "so it needs a server the test bed started"
            )
        return self._redis.get()

    def postgres_server(self) -> PostgresServer:
        """Our own PostgreSQL, for tests that restart or kill it."""
        if self.external_database_url is not None:
            raise ServiceError(
                f"{DATABASE_URL_ENV} is set: this test restarts or kills "
                "PostgreSQL, so it needs a server the test bed started"
            )
        return self._postgres.get()

    def fresh_postgres_url(self) -> str:
        """A new empty database on the session's PostgreSQL server."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        if self.external_database_url is not None:
            return create_database(self.postgres_url(), name)
        return self._postgres.get().create_database(name)

    def stop(self) -> None:
        for server in (self._redis.value, self._postgres.value):
            if server is not None:
                server.stop()
