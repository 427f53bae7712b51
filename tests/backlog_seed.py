"""Seeds many paid card orders straight into PostgreSQL with set-based SQL (seconds for 100,000),
for the paid-backlog chaos test and benchmark: each order is captured (`paid`), confirmed (so its
lines are regular backlog) unless it is one of every `unconfirmed_every`-th, with 3 lines."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from models.db.commerce import Customer, Manufacturer
from models.db.engine import Database

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
LINES_PER_ORDER = 3
UNIT_PRICE, QUANTITY = 1000, 2
TOTAL = LINES_PER_ORDER * QUANTITY * UNIT_PRICE

_ORDERS = """
INSERT INTO orders (number, customer_id, manufacturer_id, currency, total, payment_method,
    stripe_payment_intent_id, placed_at, confirmation_status, confirmed_at, confirmation_overdue,
    fulfillment_status, payment_status, hold_state, invoiced, paid, outstanding_balance,
    archived, lines_locked, download_allowed, tracking_numbers, updated_at)
SELECT :prefix || lpad(g::text, 7, '0'), 'seed-c', 'seed-m', 'EUR', :total, 'stripe_card',
    'pi_' || :prefix || g, :t0,
    CASE WHEN :every > 0 AND g % :every = 0 THEN 'new' ELSE 'confirmed' END, :t0, false,
    'backordered', 'paid', 'captured', 0, :total, -:total, false, false, true, '[]', :t0
FROM generate_series(1, :count) AS g
"""
_LINES = """
INSERT INTO order_lines (order_id, position, sku, quantity, unit_price, is_insert)
SELECT o.id, p, 'SEED-SKU-' || p, :quantity, :price, false
FROM orders o CROSS JOIN generate_series(1, :lines) AS p
WHERE o.number LIKE :prefix || '%'
"""
_REGULAR = """
INSERT INTO backlog_skus (order_id, line_id, sku, kind, quantity, remaining, unit_price, created_at)
SELECT l.order_id, NULL, l.sku, 'regular', l.quantity, l.quantity, l.unit_price, :t0
FROM order_lines l JOIN orders o ON o.id = l.order_id
WHERE o.number LIKE :prefix || '%' AND o.confirmation_status = 'confirmed'
"""


def seed_paid_card_orders(
    db: Database, count: int, *, prefix: str = "SEED", unconfirmed_every: int = 0
) -> None:
    """`count` captured card orders numbered `<prefix>0000001`…, in one transaction."""
    with db.sessions() as session, session.begin():
        if session.get(Manufacturer, "seed-m") is None:
            session.add(Manufacturer(id="seed-m", name="Seed", holiday_country="DE",
                                     updated_at=T0))  # fmt: skip
            session.add(Customer(id="seed-c", email="seed@example.com", name="Seed"))
            session.flush()
        common = {"prefix": prefix, "t0": T0}
        session.execute(text(_ORDERS), {**common, "total": TOTAL, "count": count,
                                        "every": unconfirmed_every})  # fmt: skip
        session.execute(text(_LINES), {**common, "quantity": QUANTITY, "price": UNIT_PRICE,
                                       "lines": LINES_PER_ORDER})  # fmt: skip
        session.execute(text(_REGULAR), common)
    with db.engine.connect() as connection:
        # Fresh statistics, as autovacuum would have them: plans then match the data.
        connection.execute(text("ANALYZE orders, order_lines, backlog_skus"))
        connection.commit()
