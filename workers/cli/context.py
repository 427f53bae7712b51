"""Connections for one CLI command: the database, and Redis (embedded when not configured)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from models.db.engine import Database, connect
from workers.queue import embedded_redis as embedded
from workers.runtime import prepare_database
from workers.settings import Settings


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    """The database, migrated if embedded, checked if configured."""
    prepare_database(settings)
    db = connect(settings.effective_database_url())
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def redis_connection(settings: Settings, **options: Any) -> Iterator[redis.Redis]:
    """A Redis client for the configured server or the embedded one; `options` go to redis-py
    (e.g. short timeouts). A malformed URL is a RedisError that does not quote it."""
    server = None if settings.redis_url else embedded.acquire(settings.data_dir)
    try:
        client = redis.Redis.from_url(server.url if server else settings.redis_url, **options)
    except ValueError:  # its message may quote the URL, password included
        if server is not None:
            embedded.release(server)
        raise redis.RedisError("the Redis URL is not valid (ORDERFLOW_REDIS_URL)") from None
    try:
        yield client
    finally:
        client.close()
        if server is not None:
            embedded.release(server)
