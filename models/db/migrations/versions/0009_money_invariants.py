"""money invariants: one order family per PaymentIntent, a failed capture kept on its order

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# Backorders share their root's PaymentIntent: only roots must not share one.
ROOTS = "parent_id IS NULL AND stripe_payment_intent_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capture_failure', sa.Text(), nullable=True))
        batch_op.create_index('ix_orders_payment_intent', ['stripe_payment_intent_id'])
        batch_op.create_index('ux_orders_root_payment_intent', ['stripe_payment_intent_id'],
                              unique=True, postgresql_where=sa.text(ROOTS),
                              sqlite_where=sa.text(ROOTS))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ux_orders_root_payment_intent', postgresql_where=sa.text(ROOTS),
                            sqlite_where=sa.text(ROOTS))
        batch_op.drop_index('ix_orders_payment_intent')
        batch_op.drop_column('capture_failure')
