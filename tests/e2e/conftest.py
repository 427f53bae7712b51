"""A real stack for e2e tests: our PostgreSQL and Redis, and orderflow processes started as a
user would start them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from models.db import migrate
from tests.support import wait_until
from workers import processes
from workers.runtime import Runtime, open_runtime
from workers.settings import Settings


@dataclass
class Stack:
    """Settings, a runtime in the test process, and the processes started so far."""

    settings: Settings
    env: dict[str, str]
    rt: Runtime
    logs: Path
    started: list[processes.OrderflowProcess] = field(default_factory=list)

    def start(self, name: str, *args: str) -> processes.OrderflowProcess:
        """Start `orderflow <args>` against this stack."""
        proc = processes.start(name, list(args), self.env, self.logs)
        self.started.append(proc)
        return proc

    def worker(
        self, name: str = "worker", processes_: int = 1, threads: int = 4
    ) -> processes.OrderflowProcess:
        """Start `orderflow worker` and wait until its processes are consuming."""
        proc = self.start(name, "worker", "--processes", str(processes_), "--threads", str(threads))
        ready = wait_until(lambda: proc.log_text().count(" ready: ") >= processes_, 60)
        assert ready, proc.log_text()
        return proc


@pytest.fixture
def stack(
    fresh_postgres_url: str, redis_server: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    redis_server.flushall()  # ours: the test bed started it
    overrides: dict[str, Any] = getattr(request, "param", {})
    values = {
        "database_url": fresh_postgres_url,
        "redis_url": redis_server.url,
        "data_dir": str(tmp_path / "data"),
        **overrides,
    }
    settings = Settings(**values, _env_file=None)
    migrate.upgrade(fresh_postgres_url)
    env = processes.child_env({f"ORDERFLOW_{k.upper()}": str(v) for k, v in values.items()})
    rt = open_runtime(settings)
    stack = Stack(settings=settings, env=env, rt=rt, logs=tmp_path / "logs")
    yield stack
    for proc in stack.started:
        proc.kill()
    rt.close()
