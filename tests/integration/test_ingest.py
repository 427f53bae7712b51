"""The ingress pipeline on SQLite and PostgreSQL: dedup, quarantine reasons, parking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models.db.commerce import Manufacturer, Order, OrderLine
from models.db.engine import Database
from models.db.machinery import (
    InboxEntry,
    Notification,
    ParkedMessage,
    QuarantinedMessage,
    TimelineEvent,
)
from models.db.uow import UnitOfWork
from scheduler.jobs import expire_parked
from tasks.intake import ingest
from tasks.intake.ingest import Outcome
from tasks.intake.registry import HANDLERS
from tasks.messages.catalogue import decode
from tests import factories as f
from tests import support

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def feed(db: Database, *bodies: bytes, accept_unsigned: bool = False) -> list[Outcome]:
    return support.feed(db, list(bodies), f.policy(accept_unsigned=accept_unsigned), T0)


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def reasons(db: Database) -> list[str]:
    with db.sessions() as session:
        return list(
            session.scalars(select(QuarantinedMessage.reason).order_by(QuarantinedMessage.id))
        )


def test_the_same_envelope_five_times_has_one_effect(db: Database) -> None:
    # Given
    placed = f.body(f.order("M1"))
    feed(db, f.body(f.manufacturer()))
    # When delivered five times, in one batch and in separate ones
    first = feed(db, placed, placed, placed)
    later = feed(db, placed) + feed(db, placed)
    # Then
    assert [o.result for o in first + later] == ["applied"] + ["duplicate"] * 4
    assert count(db, Order) == 1
    assert count(db, OrderLine) == 2
    assert count(db, TimelineEvent) == 1
    assert count(db, InboxEntry) == 2


def test_each_kind_of_bad_input_is_quarantined_with_its_reason(db: Database) -> None:
    # Given 200 valid messages with five bad ones among them
    feed(db, f.body(f.manufacturer()))
    tampered = f.order("BAD-SIG")
    tampered["data"]["currency"] = "USD"
    wrong_version = f.order("BAD-V")
    wrong_version["version"] = 9
    oversized = f.order("BIG", padding="x" * (300 * 1024))
    bad = [
        b"\x00not json at all",
        f.body(wrong_version),
        f.body(oversized),
        f.body(tampered),
        f.body(f.envelope("order.shipped", signed=False)),
    ]
    good = [f.body(f.order(f"G{i}")) for i in range(200)]
    mixed = good[:50] + bad[:2] + good[50:120] + bad[2:] + good[120:]
    # When
    outcomes = feed(db, *mixed)
    # Then every valid one applied and every bad one quarantined with its reason
    assert sum(o.result == "applied" for o in outcomes) == 200
    assert reasons(db) == [
        "not_json",
        "unknown_version",
        "oversized",
        "signature_invalid",
        "signature_missing",
    ]
    assert count(db, Order) == 200


def test_unsigned_messages_are_refused_unless_allowed_and_money_always_needs_one(
    db: Database,
) -> None:
    unsigned = f.body(f.manufacturer(signed=False))
    assert feed(db, unsigned)[0].reason == "signature_missing"
    assert feed(db, unsigned, accept_unsigned=True)[0].result == "applied"
    shipped = f.body(f.envelope("order.shipped", signed=False))
    assert feed(db, shipped, accept_unsigned=True)[0].reason == "signature_missing"


def test_a_message_before_its_order_is_parked_then_applied_when_it_arrives(db: Database) -> None:
    # Given a confirmation that arrives before its order (twice)
    feed(db, f.body(f.manufacturer()))
    confirmed = f.body(f.envelope("order.confirmed", number="EARLY-1"))
    assert [o.result for o in feed(db, confirmed, confirmed)] == ["parked", "duplicate"]
    assert count(db, ParkedMessage) == 1
    # When the order arrives
    assert feed(db, f.body(f.order("EARLY-1")))[0].result == "applied"
    # Then the parked message was applied once, in the same transaction
    with db.sessions() as session:
        order = session.scalars(select(Order).where(Order.number == "EARLY-1")).one()
        assert order.confirmation_status == "confirmed"
        kinds = list(session.scalars(select(TimelineEvent.kind).order_by(TimelineEvent.id)))
    assert kinds == ["order.placed", "order.confirmed"]
    assert count(db, ParkedMessage) == 0


def test_a_parked_message_whose_order_never_comes_is_quarantined_and_replayable(
    db: Database,
) -> None:
    # Given a parked message
    archived = f.body(f.envelope("order.archived", number="GHOST"))
    feed(db, archived)
    # When its time runs out
    rt = _FakeRuntime(db)
    assert expire_parked(rt, T0 + timedelta(minutes=59)) == "expired=0"  # type: ignore[arg-type]
    assert expire_parked(rt, T0 + timedelta(hours=1)) == "expired=1"  # type: ignore[arg-type]
    # Then it is quarantined with the reason, and a replay of it is not taken for a duplicate
    assert reasons(db) == ["unknown_order"]
    assert feed(db, archived)[0].result == "parked"


def test_a_refused_change_quarantines_with_the_reason_and_changes_nothing(db: Database) -> None:
    feed(db, f.body(f.manufacturer()), f.body(f.order("L1")))
    with db.sessions() as session, session.begin():
        session.scalars(select(Order)).one().lines_locked = True
    changed = f.envelope("order.lines_changed", number="L1")
    outcome = feed(db, f.body(changed))[0]
    assert (outcome.result, outcome.reason) == ("quarantined", "lines_locked")
    with db.sessions() as session:
        assert [x.sku for x in session.scalars(select(OrderLine).order_by(OrderLine.id))] == [
            "DRILL-18V",
            "LEAFLET-DE",
        ]
        assert (
            session.scalars(select(InboxEntry).where(InboxEntry.envelope_id == changed["id"])).all()
            == []
        )


def test_an_order_waits_for_its_manufacturer_and_expires_if_it_never_comes(db: Database) -> None:
    # Given orders for manufacturers that do not exist (yet)
    first = feed(db, f.body(f.order("U1", manufacturer_id="late-oem")))[0]
    feed(db, f.body(f.order("U2", manufacturer_id="never-oem")))
    feed(db, f.body(f.envelope("order.confirmed", number="U1")))
    assert (first.result, first.reason) == ("parked", "awaiting_manufacturer")
    # When one manufacturer arrives
    feed(db, f.body(f.manufacturer(id="late-oem")))
    # Then its order is placed, and the confirmation that waited for the order is applied too
    with db.sessions() as session:
        placed = {o.number: o.confirmation_status for o in session.scalars(select(Order))}
    assert placed == {"U1": "confirmed"}
    # And the other order is quarantined when its wait is over
    assert expire_parked(_FakeRuntime(db), T0 + timedelta(hours=1)) == "expired=1"  # type: ignore[arg-type]
    assert reasons(db) == ["unknown_manufacturer"]


def test_a_handler_bug_quarantines_that_message_only(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(uow: UnitOfWork, message: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(HANDLERS, "inventory.set", broken)
    outcomes = feed(db, f.body(f.envelope("inventory.set")), f.body(f.manufacturer()))
    assert [(o.result, o.reason) for o in outcomes] == [
        ("quarantined", "handler_error"),
        ("applied", ""),
    ]


class _FakeRuntime:
    """Just enough of a Runtime for a scheduler job: a unit of work on this database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def new_uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, lambda: T0)


def test_a_run_of_orders_is_applied_together_and_releases_what_waited_for_them(
    db: Database,
) -> None:
    # Given a confirmation waiting for B2, then a run of three new orders
    feed(db, f.body(f.manufacturer()), f.body(f.envelope("order.confirmed", number="B2")))
    run = [f.body(f.order(n)) for n in ("B1", "B2", "B3")]
    # When they arrive in one batch
    outcomes = feed(db, *run, run[0])
    # Then all three are placed once, and B2's confirmation is applied
    assert [o.result for o in outcomes] == ["applied", "applied", "applied", "duplicate"]
    with db.sessions() as session:
        stored = {o.number: o.confirmation_status for o in session.scalars(select(Order))}
        lines = session.scalar(select(func.count()).select_from(OrderLine))
    assert stored == {"B1": "new", "B2": "confirmed", "B3": "new"}
    assert lines == 6
    assert count(db, ParkedMessage) == 0


def test_a_run_with_a_taken_number_or_unknown_manufacturer_refuses_only_those(
    db: Database,
) -> None:
    feed(db, f.body(f.manufacturer()), f.body(f.order("T1")))
    outcomes = feed(
        db,
        f.body(f.order("T2")),
        f.body(f.order("T1")),
        f.body(f.order("T3", manufacturer_id="nobody")),
        f.body(f.order("T4")),
    )
    assert [(o.result, o.reason) for o in outcomes] == [
        ("applied", ""),
        ("quarantined", "order_exists"),
        ("parked", "awaiting_manufacturer"),
        ("applied", ""),
    ]
    assert count(db, Order) == 3
    assert count(db, InboxEntry) == 5  # manufacturer, T1, T2, T3 (parked), T4


def test_a_message_parked_while_its_manufacturer_was_being_committed_is_resolved(
    db: Database,
) -> None:
    # Given an order parked for a manufacturer that another consumer committed meanwhile
    # (so nobody released it: each transaction saw the other's work uncommitted)
    assert feed(db, f.body(f.order("RACE-1")))[0].reason == "awaiting_manufacturer"
    with db.sessions() as session, session.begin():
        session.add(Manufacturer(id="oem-acme", name="ACME", holiday_country="DE", updated_at=T0))
    # When the periodic re-check runs
    with UnitOfWork(db, lambda: T0) as uow:
        released = ingest.resolve_parked(uow, f.policy())
        uow.commit()
    # Then the order is placed and nothing waits any more
    assert released == 1
    assert count(db, Order) == 1
    assert count(db, ParkedMessage) == 0


def test_the_same_refused_bytes_are_held_once_and_counted(db: Database) -> None:
    # Given a tampered order and a non-JSON blob
    feed(db, f.body(f.manufacturer()))
    tampered = f.order("BAD-SIG")
    tampered["data"]["currency"] = "USD"
    bad, blob = f.body(tampered), b"not json at all"
    # When each is delivered three times (redelivered entries, a batch taken over), in one
    # batch and in later ones, next to a different tampered order
    other = f.order("BAD-SIG-2")
    other["data"]["currency"] = "USD"
    first = feed(db, bad, blob, bad)
    later = feed(db, blob, bad) + feed(db, blob, f.body(other))
    # Then each is refused every time, held once, and its deliveries counted
    assert [o.result for o in first + later] == ["quarantined"] * 7
    with db.sessions() as session:
        held = session.execute(
            select(QuarantinedMessage.reason, QuarantinedMessage.deliveries)
            .where(QuarantinedMessage.status == "held")
            .order_by(QuarantinedMessage.id)
        ).all()
    assert [tuple(row) for row in held] == [
        ("signature_invalid", 3), ("not_json", 3), ("signature_invalid", 1),
    ]  # fmt: skip
    assert count(db, Order) == 0


def _on_account(number: str) -> bytes:
    return f.body(f.order(number, payment_method="on_account", stripe_payment_intent_id=None))


def _changes(number: str) -> list[bytes]:
    """processing, shipped and fulfilled for order `number`, a second apart."""
    changes = [
        f.envelope("order.fulfillment_changed", number=number, status="processing", note=None),
        f.envelope("order.shipped", number=number, tracking_numbers=["TRK1"], carrier="DHL"),
        f.envelope("order.fulfillment_changed", number=number, status="fulfilled", note=None),
    ]
    for step, change in enumerate(changes):
        change["occurred_at"] = (T0 + timedelta(seconds=step)).isoformat()
    return [f.body(f.resign(change)) for change in changes]


def _fulfillment_and_emails(db: Database) -> tuple[str, list[str]]:
    with db.sessions() as session:
        status = session.scalars(select(Order.fulfillment_status)).one()
        return status, sorted(session.scalars(select(Notification.kind)))


EVERY_EMAIL = ["fulfillment_fulfilled", "fulfillment_processing", "fulfillment_shipped"]


def test_a_change_parked_before_its_order_follows_the_changes_placed_with_the_order(
    db: Database,
) -> None:
    # Given an order's last change, parked by one consumer while another consumer's batch,
    # uncommitted and so unseen, held the order and its earlier changes
    feed(db, f.body(f.manufacturer()))
    processing, shipped, fulfilled = _changes("R1")
    assert feed(db, fulfilled)[0].reason == "awaiting_order"
    # When that batch is applied
    outcomes = feed(db, _on_account("R1"), processing, shipped)
    # Then the parked change comes after the batch's own, a legal move: nothing refused
    assert [o.result for o in outcomes] == ["applied"] * 3
    assert reasons(db) == []
    assert _fulfillment_and_emails(db) == ("fulfilled", EVERY_EMAIL)
    assert count(db, ParkedMessage) == 0


def test_a_batch_that_parked_changes_to_an_order_parks_its_later_ones_too(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch whose first changes to an order are parked (it is not there yet), and the
    # order committed by another consumer while the batch goes on (nobody releases them)
    feed(db, f.body(f.manufacturer()))
    placed = decode(_on_account("R2"), 256 * 1024)

    def other_consumer(uow: UnitOfWork, message: object) -> None:
        HANDLERS["order.placed"](uow, placed)

    monkeypatch.setitem(HANDLERS, "inventory.set", other_consumer)
    processing, shipped, fulfilled = _changes("R2")
    meanwhile = f.body(f.envelope("inventory.set"))
    # When the batch reaches the last change
    outcomes = feed(db, processing, shipped, meanwhile, fulfilled)
    # Then it waits behind the earlier ones rather than overtake them (an illegal move)
    assert [o.result for o in outcomes] == ["parked", "parked", "applied", "parked"]
    assert reasons(db) == []
    # And the periodic re-check applies all three in their order
    with UnitOfWork(db, lambda: T0) as uow:
        assert ingest.resolve_parked(uow, f.policy()) == 1
        uow.commit()
    assert _fulfillment_and_emails(db) == ("fulfilled", EVERY_EMAIL)
    assert count(db, ParkedMessage) == 0
