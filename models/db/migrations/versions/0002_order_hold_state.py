"""order hold state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:23:58.938831
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.db.base

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hold_state", sa.String(length=16), nullable=False, server_default="none")
        )
    # Card orders placed before this column existed hold an authorization.
    op.execute(
        "UPDATE orders SET hold_state = 'held' "
        "WHERE payment_method = 'stripe_card' AND payment_status = 'authorized'"
    )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("hold_state")
