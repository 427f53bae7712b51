"""Session fixtures for the real services (tests/services/) and fresh databases per test.

A service that cannot be had skips the test, except in CI (`CI=true`) where it fails it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from tests.services import (
    PostgresServer,
    RedisServer,
    ServiceBed,
    ServiceError,
    drop_database,
)

_T = TypeVar("_T")


def in_ci() -> bool:
    """Whether a missing service must fail rather than skip."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, skip elsewhere."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _need(get: Callable[[], _T]) -> _T:
    try:
        return get()
    except ServiceError as error:
        unavailable(str(error))


@pytest.fixture(scope="session")
def service_bed() -> Iterator[ServiceBed]:
    """Starts servers lazily, on first use, and stops them at the end of the session."""
    # Not under pytest's basetemp: another pytest session on the machine resets those folders
    # to mode 0700, and PostgreSQL (running as an unprivileged user) then cannot restart.
    workdir = Path(tempfile.mkdtemp(prefix="orderflow-services-"))
    bed = ServiceBed(workdir)
    yield bed
    bed.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(service_bed: ServiceBed) -> str:
    """ORDERFLOW_TEST_REDIS_URL (never flushed), else our own server's URL."""
    return _need(service_bed.redis_url)


@pytest.fixture(scope="session")
def postgres_url(service_bed: ServiceBed) -> str:
    """ORDERFLOW_TEST_DATABASE_URL, else the `orderflow_test` database on our own server."""
    return _need(service_bed.postgres_url)


@pytest.fixture
def redis_server(service_bed: ServiceBed) -> Iterator[RedisServer]:
    """Our own Redis, for tests that restart or kill it; left running after the test."""
    server = _need(service_bed.redis_server)
    yield server
    if not server.running:
        server.restart()


@pytest.fixture
def postgres_server(service_bed: ServiceBed) -> Iterator[PostgresServer]:
    """Our own PostgreSQL, for tests that restart or kill it; left running after the test."""
    server = _need(service_bed.postgres_server)
    yield server
    if not server.running:
        server.restart()


@pytest.fixture
def fresh_postgres_url(service_bed: ServiceBed) -> Iterator[str]:
    """A new empty PostgreSQL database for this test."""
    url = _need(service_bed.fresh_postgres_url)
    yield url
    if service_bed.external_database_url is not None:
        drop_database(url)  # ours to drop; our own throw-away server needs no tidying


@pytest.fixture
def fresh_sqlite_url(tmp_path: Path) -> str:
    """A new SQLite database file for this test."""
    return f"sqlite:///{tmp_path / 'orderflow.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each kind, so integration tests run on both."""
    name = "fresh_sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    url: str = request.getfixturevalue(name)
    return url


# Report lines the chaos, scale-out, soak and money-model tests print (`attempted= effects=
# lost= duplicated=`, `scale-out: ...`, `money model (...): ...`) are the evidence those tests
# exist for: repeat them at the end of the run, where CI's log shows them, instead of leaving
# them in the captured output of passed tests.
_REPORT_MARKERS = ("attempted=", "scale-out:", "webhooks=", "resent=", "envelopes_per_s=",
                   "money model (")  # fmt: skip
_reports: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the report lines of each passed test."""
    if report.when == "call" and report.passed:
        for line in report.capstdout.splitlines():
            if any(marker in line for marker in _REPORT_MARKERS):
                _reports.append(f"{report.nodeid}: {line.strip()}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the collected report lines in their own section."""
    if _reports:
        terminalreporter.section("effect reports")
        for line in _reports:
            terminalreporter.write_line(line)
