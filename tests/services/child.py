"""The base of both servers: one child process of ours, its home dir, port and log.

Servers still running at interpreter exit are stopped then.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from tests.services.common import LOOPBACK, Account, ServiceError
from tests.services.processes import (
    _kill_group,
    _listening,
    _spawn,
    _stop_process,
    _wait_ready,
)

_live: set[_ChildServer] = set()  # stopped at exit if still running
_live_lock = threading.Lock()


@atexit.register
def _stop_all_at_exit() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop(timeout=5.0)


@dataclass(eq=False)
class _ChildServer:
    """What both servers share: a home dir, a loopback port, our child process and its log."""

    home: Path
    port: int = field(default=0, init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _stop_signal: ClassVar[int] = signal.SIGTERM
    _log_name: ClassVar[str] = "server.log"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServiceError(f"{type(self).__name__} was never started")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log(self) -> Path:
        return self.home / self._log_name

    def _run(self, argv: list[str], who: Account | None, timeout: float) -> None:
        """Start `argv` as our child, wait until it answers, check it is the one answering."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        signame = signal.Signals(self._stop_signal).name.removeprefix("SIG")
        self.process = _spawn(argv, home=self.home, log=self.log, who=who, death_signal=signame)
        with _live_lock:
            _live.add(self)
        try:
            what = f"{argv[0]} on {LOOPBACK}:{self.port}"
            _wait_ready(
                what,
                self.process,
                log=self.log,
                offset=offset,
                timeout=timeout,
                probe=lambda: _listening(self.pid, self.port) and self._answers(),
            )
            self._verify_identity()
        except BaseException:
            self.kill()
            raise

    def _answers(self) -> bool:
        raise NotImplementedError

    def _verify_identity(self) -> None:
        raise NotImplementedError

    def _launch(self, port: int, timeout: float) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 20.0) -> None:
        """The server's clean-stop signal, then SIGKILL of its process group after `timeout` s."""
        _stop_process(self.process, self._stop_signal, timeout)
        with _live_lock:
            _live.discard(self)

    def kill(self) -> None:
        """SIGKILL the server and its children, as a crash would."""
        _kill_group(self.process)
        with _live_lock:
            _live.discard(self)

    def restart(self, timeout: float = 30.0) -> None:
        """Stop (if running), then start again on the same port."""
        self.stop()
        self._launch(self.port, timeout)
