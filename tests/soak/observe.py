"""What the soak sees: the egress stream followed as a consumer would, the Stripe fake's effect
log, the SMTP sink's mail, the database's orders and quarantine, PostgreSQL's own log."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from models.db.commerce import Order
from models.db.engine import Database
from models.db.machinery import QuarantinedMessage
from tests.fakes.stripe_server import StripeFake
from tests.soak.oracle import Final, Observed
from workers.demo.smtp_sink import SmtpSink
from workers.queue.streams import EGRESS_STREAM

_EVENT_KEYS = {"message.refused": "envelope_id"}  # other types are keyed by their order number


class EgressFollower:
    """Reads the egress stream with XREAD from a thread, across Redis restarts (a new stream's
    ids are later than the old one's: they are times)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, name="egress-follower", daemon=True)

    def __enter__(self) -> EgressFollower:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last = "0-0"
        client = redis.Redis.from_url(self._url, socket_timeout=5)
        while not self._stop.is_set():
            try:
                answer: Any = client.xread({EGRESS_STREAM: last}, count=1000, block=200)
            except redis.RedisError:
                self._stop.wait(0.2)  # Redis restarting: read on once it is back
                continue
            for _, entries in answer or []:
                with self._lock:
                    self._events += [json.loads(fields[b"event"]) for _, fields in entries]
                last = entries[-1][0].decode()
        with contextlib.suppress(redis.RedisError):
            client.close()

    def counted(self) -> Counter[tuple[str, str]]:
        """Events by (type, key), each distinct event id once: consumers deduplicate by id."""
        with self._lock:
            events = {str(e["id"]): e for e in self._events}
        return Counter(
            (str(e["type"]), str(e["data"][_EVENT_KEYS.get(str(e["type"]), "number")]))
            for e in events.values()
        )

    @property
    def appended(self) -> int:
        """Every entry read, an event appended twice counted twice."""
        with self._lock:
            return len(self._events)


def deadlocks_since(log: Path, offset: int) -> int:
    """`deadlock detected` errors PostgreSQL logged after `offset` bytes of its log."""
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().count(b"deadlock detected")


def orders(db: Database) -> dict[str, Final]:
    query = select(Order.number, Order.confirmation_status, Order.fulfillment_status,
                   Order.payment_status, Order.download_allowed, Order.archived,
                   Order.lines_locked)  # fmt: skip
    with db.sessions() as session:
        return {str(row[0]): Final(*row[1:]) for row in session.execute(query)}


def quarantined(db: Database) -> Counter[str]:
    """Quarantine records by reason, one per envelope (or per body, for bytes without one)."""
    key = func.coalesce(QuarantinedMessage.envelope_id, QuarantinedMessage.fingerprint)
    query = select(QuarantinedMessage.reason, func.count(func.distinct(key))).group_by(
        QuarantinedMessage.reason
    )
    with db.sessions() as session:
        return Counter({str(reason): int(n) for reason, n in session.execute(query)})


def emails(sink: SmtpSink) -> tuple[Counter[tuple[str, str]], int]:
    """Mail by (recipient, subject), one per Message-ID; and how many arrived again with a
    Message-ID already seen."""
    seen: dict[str, tuple[str, str]] = {}
    resent = 0
    for mail in sink.messages:
        if mail.message_id in seen:
            resent += 1
            continue
        seen[str(mail.message_id)] = (mail.rcpt_tos[0], str(mail.subject))
    return Counter(seen.values()), resent


def stripe_effects(fake: StripeFake) -> Counter[tuple[str, str, int]]:
    return Counter((e.kind, e.pi_id, e.amount) for e in fake.effects if e.kind != "create")


def observe(db: Database, fake: StripeFake, sink: SmtpSink, egress: EgressFollower, *,
            log: Path, offset: int) -> Observed:  # fmt: skip
    mail, resent = emails(sink)
    reasons = quarantined(db)
    return Observed(
        orders=orders(db), stripe=stripe_effects(fake), emails=mail, resent=resent,
        egress=egress.counted(), quarantined=reasons,
        delivery_limit=reasons.get("delivery_limit", 0), deadlocks=deadlocks_since(log, offset),
    )  # fmt: skip
