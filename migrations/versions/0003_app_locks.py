"""Named lock rows; the interview-slots row serialises the concurrency cap across hosts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:38:52.414021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    app_locks = op.create_table('app_locks',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('touched_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.bulk_insert(app_locks, [{"name": "interview_slots", "touched_at": None}])


def downgrade() -> None:
    op.drop_table('app_locks')
