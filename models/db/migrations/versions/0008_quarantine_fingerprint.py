"""quarantine fingerprint: the same held bytes are one record

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 11:45:00
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

HELD = "status = 'held'"


def upgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('deliveries', sa.Integer(), server_default='1',
                                      nullable=False))
    # Records kept before get their fingerprint; where the same bytes are held more than once
    # (as could happen before), only the oldest gets it, and the others stay as they are.
    quarantine = sa.table('quarantine', sa.column('id', sa.BigInteger()),
                          sa.column('body', sa.LargeBinary()), sa.column('status', sa.String()),
                          sa.column('fingerprint', sa.String()))
    bind = op.get_bind()
    held: set[str] = set()
    rows = bind.execute(sa.select(quarantine.c.id, quarantine.c.body, quarantine.c.status)
                        .order_by(quarantine.c.id)).all()
    for row_id, body, status in rows:
        fingerprint = hashlib.sha256(bytes(body)).hexdigest()
        if status == 'held':
            if fingerprint in held:
                continue
            held.add(fingerprint)
        bind.execute(sa.update(quarantine).where(quarantine.c.id == row_id)
                     .values(fingerprint=fingerprint))
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index('ux_quarantine_held_fingerprint', ['fingerprint'], unique=True,
                              postgresql_where=sa.text(HELD), sqlite_where=sa.text(HELD))


def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('ux_quarantine_held_fingerprint',
                            postgresql_where=sa.text(HELD), sqlite_where=sa.text(HELD))
        batch_op.drop_column('deliveries')
        batch_op.drop_column('fingerprint')
