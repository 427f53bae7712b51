"""A private redis-server of ours with the ACL users of docs/deploy/redis-users.acl (fresh random
passwords), optionally also listening with TLS; and how tests name a refused command."""

from __future__ import annotations

import hashlib
import re
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
import trustme

from tests.services import LOOPBACK, RedisServer, ServiceError, free_port, redis_executable

ACL_FILE = Path(__file__).resolve().parents[1] / "docs" / "deploy" / "redis-users.acl"
USERS = ("producer", "worker")
# Our probes (PING, INFO, the process-id check) connect as the default user without a password.
HARNESS_USER = "user default on nopass ~* &* +@all"
MIN_VERSION = (7, 0)  # %R~ / %W~ key permissions


@dataclass(frozen=True)
class Tls:
    """The files of a test CA and the server certificate it issued for 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path) -> Tls:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        issued = ca.issue_cert(LOOPBACK)
        files = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        ca.cert_pem.write_to_path(str(files.ca))
        issued.cert_chain_pems[0].write_to_path(str(files.cert))
        issued.private_key_pem.write_to_path(str(files.key))
        return files


@dataclass
class AclRedis:
    """Our server, the password of each ACL user, and the TLS port and files when asked for."""

    server: RedisServer
    passwords: dict[str, str]
    tls: Tls | None = None
    tls_port: int = 0

    def url(self, user: str, *, tls: bool = False, password: str | None = None) -> str:
        """`redis://user:password@127.0.0.1:port/0`, or `rediss://…?ssl_ca_certs=…` with tls."""
        secret = quote(self.passwords[user] if password is None else password, safe="")
        if not tls:
            return f"redis://{user}:{secret}@{LOOPBACK}:{self.server.port}/0"
        assert self.tls is not None, "started without TLS"
        ca = quote(str(self.tls.ca), safe="/")
        return f"rediss://{user}:{secret}@{LOOPBACK}:{self.tls_port}/0?ssl_ca_certs={ca}"

    def client(self, user: str, *, tls: bool = False) -> redis.Redis:
        """A client authenticated as `user`; close it (or use `with`)."""
        return redis.Redis.from_url(self.url(user, tls=tls), socket_timeout=10)

    def admin(self) -> redis.Redis:
        """The default user, which the test harness keeps for itself."""
        return self.server.client()

    def stop(self) -> None:
        self.server.stop()


def _binary_version(executable: Path) -> tuple[int, ...]:
    output = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    found = re.search(r"v=(\d+)\.(\d+)", output)
    return (int(found[1]), int(found[2])) if found else (0,)


def acl_file_with(passwords: dict[str, str]) -> str:
    """The shipped ACL file with each `#<USER>_PASSWORD_SHA256` placeholder filled in."""
    text = ACL_FILE.read_text(encoding="utf-8")
    for user, password in passwords.items():
        digest = hashlib.sha256(password.encode()).hexdigest()
        text = text.replace(f"#{user.upper()}_PASSWORD_SHA256", f"#{digest}")
    return text


def start_acl_redis(workdir: Path, *, tls: bool = False) -> AclRedis:
    """Start our server with the shipped ACL users (ServiceError when it cannot be had)."""
    executable = redis_executable()
    version = _binary_version(executable)
    if version < MIN_VERSION:
        raise ServiceError(f"the ACL tests need Redis 7+; {executable} is {version}")
    workdir.mkdir(parents=True, exist_ok=True)
    passwords = {user: f"{user}-pw-{secrets.token_hex(12)}" for user in USERS}
    acl = workdir / "users.acl"
    acl.write_text(f"{HARNESS_USER}\n{acl_file_with(passwords)}", encoding="utf-8")
    # DEBUG from loopback passes the server's own switch, so the ACL is what refuses it.
    args: tuple[str, ...] = ("--aclfile", str(acl), "--enable-debug-command", "local")
    files, tls_port = (Tls.make(workdir / "tls"), free_port()) if tls else (None, 0)
    if files is not None:
        args += ("--tls-port", str(tls_port), "--tls-cert-file", str(files.cert),
                 "--tls-key-file", str(files.key), "--tls-ca-cert-file", str(files.ca),
                 "--tls-auth-clients", "no")  # fmt: skip
    server = RedisServer.start(workdir / "server", extra_args=args)
    return AclRedis(server, passwords, files, tls_port)


def denials(admin: redis.Redis, user: str) -> set[tuple[str, str]]:
    """(reason, object) of each ACL LOG entry of `user`, but for redis-py's CLIENT SETINFO.

    redis-py sends CLIENT SETINFO on connect and ignores a refusal; Redis 7.0 has no such
    subcommand to allow (docs/security.md), Redis 7.2+ logs its refusal.
    """
    entries: list[dict[str, Any]] = admin.acl_log(count=128)
    return {
        (str(e["reason"]), str(e["object"]))
        for e in entries
        if e["username"] == user and e["object"] != "client|setinfo"
    }


_COMMAND = re.compile(r"has no permissions to run the '([^']+)' command")


def refusal(call: Callable[[], Any]) -> str:
    """How Redis refused `call`: "NOPERM command <name>" or "NOPERM key"; "allowed" when not.

    Redis 7.0 and 7.2+ word NOPERM errors differently; this names them the same way.
    """
    try:
        call()
    except redis.exceptions.NoPermissionError as error:
        text = str(error)
        command = _COMMAND.search(text)
        if command is not None:
            return f"NOPERM command {command[1]}"
        if "permissions to access" in text and "key" in text:
            return "NOPERM key"
        raise
    return "allowed"
