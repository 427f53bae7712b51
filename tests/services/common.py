"""What the test-bed servers share: loopback ports, errors, the unprivileged user, environment.

Nothing here starts a process; see `processes` and `child` for that.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A server could not be started or used, or the one answering is not ours."""


class PortTakenError(ServiceError):
    """Another process holds the port we picked; starting again on a new port may work."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Account:
    """The unprivileged user PostgreSQL runs as when we are root (it refuses to run as root)."""

    name: str
    uid: int
    gid: int


def unprivileged_account() -> Account | None:
    """None when we are not root; else the `postgres` system user, or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Account(name, entry.pw_uid, entry.pw_gid)
    raise ServiceError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def _ensure_traversable(path: Path, who: Account) -> None:
    """Let `who` reach `path`: pytest makes its temp dirs 0700 and we (root) own them."""
    for directory in [path, *path.parents]:
        info = directory.stat()
        if info.st_uid == who.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == who.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if info.st_mode & bit:
            continue
        if info.st_uid != os.geteuid():
            raise ServiceError(f"user {who.name} cannot enter {directory} and it is not ours")
        # Execute only (no listing): enough for PostgreSQL to reach its data dir.
        os.chmod(directory, stat.S_IMODE(info.st_mode) | bit)


def _log_tail(log: Path, offset: int, limit: int = 3000) -> str:
    with contextlib.suppress(OSError), log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")[-limit:]
    return ""


def _server_env() -> dict[str, str]:
    """Our environment minus PG* variables, which would redirect the PostgreSQL tools."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}
