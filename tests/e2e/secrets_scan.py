"""Planted secrets (canaries) and a scan for them, and for simple encodings of them, in all that a
run leaves behind: files, every column of every table, every Redis key and value, any text."""

from __future__ import annotations

import base64
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import redis
from sqlalchemy import Engine, LargeBinary, Text, cast, column, inspect, select, table

SCAN_BATCH = 500
MAX_STREAM_ENTRIES = 100_000  # a bound on what one stream may hold here, not a tuning knob


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Canaries:
    """Unique secrets for one run. Key ids are not secrets (they appear in signatures)."""

    stripe_key: str
    signing: tuple[tuple[str, str], tuple[str, str]]  # (key id, secret): the first signs
    smtp_user: str
    smtp_password: str
    webhook_secret: str

    @classmethod
    def plant(cls) -> Canaries:
        """Fresh random values, so nothing but this run can contain them."""
        tag = secrets.token_hex(10)
        return cls(
            stripe_key=f"sk_test_canary{tag}",
            signing=(
                ("canary-new", f"sigcanaryNEW{secrets.token_hex(16)}"),
                ("canary-old", f"sigcanaryOLD{secrets.token_hex(16)}"),
            ),
            smtp_user="desk",
            smtp_password=f"smtpcanary{secrets.token_hex(12)}",
            webhook_secret=f"whsec_canary{secrets.token_hex(16)}",
        )

    @property
    def signing_keys_setting(self) -> str:
        """ORDERFLOW_SIGNING_KEYS: `id:secret,id:secret`."""
        return ",".join(f"{key_id}:{secret}" for key_id, secret in self.signing)

    def needles(self) -> dict[str, bytes]:
        """Every form looked for, by name: raw, and the encodings a client or log could use."""
        stripe, smtp = self.stripe_key, self.smtp_password
        forms: dict[str, str] = {
            "stripe_key": stripe,
            "stripe_key/bearer": f"Bearer {stripe}",
            "stripe_key/basic": _b64(f"{stripe}:"),  # curl -u sk_...: and HTTP Basic
            "stripe_key/base64": _b64(stripe),
            "smtp_password": smtp,
            "smtp_password/base64": _b64(smtp),  # AUTH LOGIN
            "smtp_password/auth_plain": _b64(f"\0{self.smtp_user}\0{smtp}"),  # AUTH PLAIN
            "webhook_secret": self.webhook_secret,
            "webhook_secret/base64": _b64(self.webhook_secret),
        }
        for key_id, secret in self.signing:
            forms[f"signing:{key_id}"] = secret
            forms[f"signing:{key_id}/base64"] = _b64(secret)
            forms[f"signing:{key_id}/hex"] = secret.encode().hex()
        return {name: text.encode() for name, text in forms.items()}


class Finding(NamedTuple):
    """A needle found: what was scanned (`kind`), which needle, and where exactly."""

    kind: str
    needle: str
    where: str


@dataclass
class Scan:
    """What was found, and how many items of each kind were looked at."""

    needles: dict[str, bytes]
    findings: list[Finding] = field(default_factory=list)
    looked_at: Counter[str] = field(default_factory=Counter)

    def check(self, kind: str, where: str, blob: bytes | str) -> None:
        """Look for every needle in `blob`; `kind` counts what was scanned."""
        data = blob if isinstance(blob, bytes) else blob.encode("utf-8", "backslashreplace")
        self.looked_at[kind] += 1
        self.findings.extend(
            Finding(kind, name, where) for name, needle in self.needles.items() if needle in data
        )

    def files(self, roots: Iterable[Path]) -> None:
        """Every regular file under each root (a root may be a file)."""
        for root in roots:
            paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for path in paths:
                self.check("file", str(path), path.read_bytes())

    def database(self, engine: Engine) -> None:
        """Every column of every table, cast to text in SQL (binary columns read as bytes)."""
        tables = inspect(engine).get_table_names()
        with engine.connect() as conn:
            for name in tables:
                columns = inspect(conn).get_columns(name)
                self.looked_at["table"] += 1
                exprs = [
                    column(c["name"])
                    if isinstance(c["type"], LargeBinary)
                    else cast(column(c["name"]), Text)
                    for c in columns
                ]
                for row in conn.execute(select(*exprs).select_from(table(name))):
                    for col, value in zip(columns, row, strict=True):
                        if value is not None:
                            blob = value if isinstance(value, str) else bytes(value)
                            self.check("cell", f"{name}.{col['name']}", blob)

    def redis(self, client: redis.Redis) -> None:
        """Every key of the server (its name and its value, read by type)."""
        raw: Any = client  # redis-py's return types are unions over sync and async
        for key in raw.scan_iter(count=SCAN_BATCH):
            kind = raw.type(key).decode()
            self.looked_at[f"redis_{kind}"] += 1
            where = f"redis {kind} {key!r}"
            self.check("redis_key", where + " (name)", key)
            for value in _redis_values(raw, key, kind):
                self.check("redis_value", where, value)


def _redis_values(client: Any, key: bytes, kind: str) -> Iterator[bytes]:
    if kind == "string":
        yield client.get(key) or b""
    elif kind == "hash":
        for name, value in client.hgetall(key).items():
            yield name
            yield value
    elif kind == "list":
        yield from client.lrange(key, 0, -1)
    elif kind == "set":
        yield from client.smembers(key)
    elif kind == "zset":
        for member, score in client.zrange(key, 0, -1, withscores=True):
            yield member
            yield str(score).encode()
    elif kind == "stream":
        for entry_id, fields in client.xrange(key, count=MAX_STREAM_ENTRIES):
            yield entry_id
            for name, value in fields.items():
                yield name
                yield value
        for group in client.xinfo_groups(key):
            yield str(group).encode()
    elif kind != "none":  # deleted between SCAN and TYPE
        raise AssertionError(f"unexpected Redis type {kind} for {key!r}")
