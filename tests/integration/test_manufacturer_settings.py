"""Issue 19, D8 through the real ingress on SQLite and PostgreSQL: unusable manufacturer settings
are refused at the door by name, and a row stored before that refuses its orders by name too."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from models.db.commerce import Manufacturer, Order
from models.db.engine import Database
from models.db.machinery import InboxEntry, ParkedMessage, QuarantinedMessage
from models.db.uow import UnitOfWork
from tasks.intake import ingest
from tasks.intake.ingest import Outcome
from tasks.orders.placing import warm_calendars
from tests import factories as f
from tests import support

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
NO_SUBDIVISION = "not a subdivision code or alias of holiday_country in the holidays package"
BAD_SUBDIVISION = f"manufacturer oem-acme has a bad setting, holiday_subdivision: {NO_SUBDIVISION}"


def feed(db: Database, *bodies: bytes) -> list[Outcome]:
    return support.feed(db, list(bodies), f.policy(), T0)


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def quarantined(db: Database) -> list[tuple[str, str]]:
    with db.sessions() as session:
        rows = session.execute(
            select(QuarantinedMessage.reason, QuarantinedMessage.detail).order_by(
                QuarantinedMessage.id
            )
        ).all()
    return [(reason, detail) for reason, detail in rows]


def store_manufacturer(db: Database, **settings: object) -> None:
    """A row as an older version stored it, before the settings were checked."""
    fields: dict[str, object] = {
        "id": "oem-acme", "name": "ACME", "timezone": "Europe/Berlin", "holiday_country": "DE",
        "holiday_subdivision": "BY", "cutoff_hour": 15, "updated_at": T0, **settings,
    }  # fmt: skip
    with db.sessions() as session, session.begin():
        session.add(Manufacturer(**fields))


def test_d8_a_manufacturer_with_an_unknown_subdivision_is_refused_and_its_order_waits(
    db: Database,
) -> None:
    # Given the reported upsert: a Bavarian manufacturer with subdivision "ZZ"
    upsert = feed(db, f.body(f.manufacturer(holiday_subdivision="ZZ")))
    # Then it is quarantined naming the field, and nothing is stored
    assert [(o.result, o.reason) for o in upsert] == [("quarantined", "schema_violation")]
    assert quarantined(db) == [
        ("schema_violation", f"data.holiday_subdivision: Value error, {NO_SUBDIVISION}")
    ]
    assert count(db, Manufacturer) == 0
    # When an order for it is placed
    placed = feed(db, f.body(f.order("D8-1")))
    # Then the order waits for its manufacturer instead of failing as a handler error
    assert [(o.result, o.reason) for o in placed] == [("parked", "awaiting_manufacturer")]
    assert count(db, ParkedMessage) == 1
    assert [reason for reason, _ in quarantined(db)] == ["schema_violation"]
    # And when the corrected manufacturer arrives, the order is placed with a 15:00 deadline
    assert [o.result for o in feed(db, f.body(f.manufacturer()))] == ["applied"]
    with db.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.confirmation_deadline == datetime(2026, 3, 3, 14, tzinfo=UTC)
    assert count(db, ParkedMessage) == 0


def test_d8_a_cutoff_hour_of_zero_is_refused(db: Database) -> None:
    # When a manufacturer's day would close at midnight
    outcomes = feed(db, f.body(f.manufacturer(cutoff_hour=0)))
    # Then it is refused naming the field, and nothing is stored
    assert [(o.result, o.reason) for o in outcomes] == [("quarantined", "schema_violation")]
    assert quarantined(db) == [
        ("schema_violation", "data.cutoff_hour: Input should be greater than or equal to 1")
    ]
    assert count(db, Manufacturer) == 0


def test_an_alias_is_stored_as_its_code(db: Database) -> None:
    # When an English manufacturer names its subdivision by an alias
    outcome = feed(db, f.body(f.manufacturer(holiday_country="GB", holiday_subdivision="England")))
    # Then the code is stored
    assert [o.result for o in outcome] == ["applied"]
    with db.sessions() as session:
        assert session.scalars(select(Manufacturer.holiday_subdivision)).one() == "ENG"


@pytest.mark.parametrize(
    ("settings", "detail"),
    [
        ({"holiday_subdivision": "ZZ"}, BAD_SUBDIVISION),
        (
            {"cutoff_hour": 0},
            "manufacturer oem-acme has a bad setting, "
            "cutoff_hour: must be 1-23 (the local hour the day closes)",
        ),
        (
            {"holiday_country": "XX", "holiday_subdivision": None},
            "manufacturer oem-acme has a bad setting, "
            "holiday_country: not a country the holidays package has a calendar for",
        ),
        (
            {"timezone": "Europe/Atlantis"},
            "manufacturer oem-acme has a bad setting, "
            "timezone: not an IANA time zone name known to this system",
        ),
    ],
    ids=["subdivision", "cutoff_hour", "country", "timezone"],
)
def test_an_order_for_a_bad_stored_manufacturer_is_refused_by_name(
    db: Database, settings: dict[str, object], detail: str
) -> None:
    # Given a manufacturer row stored before its settings were checked
    store_manufacturer(db, **settings)
    # When an order for it is placed
    outcomes = feed(db, f.body(f.order("OLD-1")))
    # Then it is refused with the specific reason, not as a handler error, and nothing is kept
    assert [(o.result, o.reason) for o in outcomes] == [("quarantined", "manufacturer_invalid")]
    assert quarantined(db) == [("manufacturer_invalid", detail)]
    assert count(db, Order) == 0
    assert count(db, InboxEntry) == 0


def test_a_run_of_orders_refuses_only_those_for_the_bad_manufacturer(db: Database) -> None:
    # Given a good manufacturer and a bad stored one
    store_manufacturer(db, id="oem-old", holiday_subdivision="ZZ")
    feed(db, f.body(f.manufacturer()))
    run = [
        f.body(f.order("R-1")),
        f.body(f.order("R-2", manufacturer_id="oem-old")),
        f.body(f.order("R-3")),
    ]
    # When the orders arrive in one batch (set-based first, then one by one)
    outcomes = feed(db, *run)
    # Then the others are placed and the one is refused by name
    assert [(o.result, o.reason) for o in outcomes] == [
        ("applied", ""),
        ("quarantined", "manufacturer_invalid"),
        ("applied", ""),
    ]
    assert quarantined(db) == [
        ("manufacturer_invalid", BAD_SUBDIVISION.replace("oem-acme", "oem-old"))
    ]
    with db.sessions() as session:
        assert sorted(session.scalars(select(Order.number))) == ["R-1", "R-3"]


def test_an_order_parked_for_a_manufacturer_stored_bad_meanwhile_is_refused(
    db: Database,
) -> None:
    # Given an order parked for its manufacturer, which then appears as a bad row
    assert feed(db, f.body(f.order("RACE-1")))[0].reason == "awaiting_manufacturer"
    store_manufacturer(db, holiday_subdivision="ZZ")
    # When the periodic re-check releases it
    with UnitOfWork(db, lambda: T0) as uow:
        assert ingest.resolve_parked(uow, f.policy()) == 1
        uow.commit()
    # Then it is quarantined by name, not left to crash the batch
    assert quarantined(db) == [("manufacturer_invalid", BAD_SUBDIVISION)]
    assert count(db, ParkedMessage) == 0
    assert count(db, Order) == 0


def test_a_worker_warms_the_usable_calendars_and_skips_a_bad_one(db: Database) -> None:
    # Given a good and a bad manufacturer
    store_manufacturer(db)
    store_manufacturer(db, id="oem-old", holiday_subdivision="ZZ")
    # When a worker starts
    with UnitOfWork(db, lambda: T0) as uow:
        warmed = warm_calendars(uow, date(2026, 3, 4))
    # Then the good calendar is loaded and the bad one does not stop it
    assert warmed == 1
