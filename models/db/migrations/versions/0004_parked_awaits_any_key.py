"""parked awaits any key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:02:44.764683
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.db.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Parked rows keep their meaning: what they waited for was always an order.
    with op.batch_alter_table("parked", schema=None) as batch_op:
        batch_op.drop_index("ix_parked_order_number")
        batch_op.alter_column(
            "order_number",
            new_column_name="awaits",
            existing_type=sa.String(length=64),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
    op.execute("UPDATE parked SET awaits = 'order:' || awaits")
    with op.batch_alter_table("parked", schema=None) as batch_op:
        batch_op.create_index("ix_parked_awaits", ["awaits"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("parked", schema=None) as batch_op:
        batch_op.drop_index("ix_parked_awaits")
    op.execute("DELETE FROM parked WHERE awaits NOT LIKE 'order:%'")
    op.execute("UPDATE parked SET awaits = substr(awaits, 7)")
    with op.batch_alter_table("parked", schema=None) as batch_op:
        batch_op.alter_column(
            "awaits",
            new_column_name="order_number",
            existing_type=sa.String(length=200),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
        batch_op.create_index("ix_parked_order_number", ["order_number"], unique=False)
