"""Starting, waiting for and stopping one server process of ours, on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.services.common import (
    Account,
    PortTakenError,
    ServiceError,
    _log_tail,
    _server_env,
    free_port,
)

_PORT_TAKEN = "Address already in use"


def _spawn(
    argv: list[str], *, home: Path, log: Path, who: Account | None, death_signal: str
) -> subprocess.Popen[bytes]:
    """Start a server in its own session, output to `log`, as `who` when given."""
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        # The server gets `death_signal` if we die without cleaning up (SIGKILL, os._exit).
        # setpriv execs the server, so the pid we hold stays the server's pid.
        argv = [setpriv, f"--pdeathsig={death_signal}", *argv]
    with log.open("ab") as output:
        return subprocess.Popen(
            argv,
            cwd=home,
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=who.uid if who else None,
            group=who.gid if who else None,
            extra_groups=[] if who else None,
        )


def _listening(pid: int, port: int) -> bool:
    """Whether process `pid` listens on `port`: we only talk to a port our child holds."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.AccessDenied:
        return True  # cannot tell; the process-id check after connecting still guards us
    except psutil.Error:
        return False
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections
    )


def _wait_ready(
    what: str,
    process: subprocess.Popen[bytes],
    *,
    log: Path,
    offset: int,
    timeout: float,
    probe: Callable[[], bool],
) -> None:
    """Poll `probe` until it is true; fail early when the server exits, or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            output = _log_tail(log, offset)
            kind = PortTakenError if _PORT_TAKEN in output else ServiceError
            raise kind(f"{what} exited with code {code} while starting; {log}:\n{output}")
        if probe():
            return
        time.sleep(0.05)
    raise ServiceError(f"{what} not ready after {timeout} s; {log}:\n{_log_tail(log, offset)}")


def _stop_process(process: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    """Send `sig`, wait up to `timeout` s, then SIGKILL the whole process group."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the server and its children (PostgreSQL backends share its process group)."""
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _on_free_port(launch: Callable[[int], None], attempts: int = 3) -> None:
    """Launch on a fresh free port; again when another process took the port first."""
    for attempt in range(attempts):
        try:
            launch(free_port())
        except PortTakenError:
            if attempt == attempts - 1:
                raise
        else:
            return
