"""Transcript turns, stage events and feedback, all deleted with their interview.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:37:04.052912
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feedback',
    sa.Column('interview_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=120), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('analytics', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['interview_id'], ['interviews.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('interview_id')
    )
    op.create_table('stage_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interview_id', sa.String(length=32), nullable=False),
    sa.Column('from_stage', sa.String(length=64), nullable=False),
    sa.Column('to_stage', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('elapsed_s', sa.Float(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['interview_id'], ['interviews.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stage_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stage_events_interview_id'), ['interview_id'], unique=False)

    op.create_table('transcript_turns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interview_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('speaker', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('start_s', sa.Float(), nullable=False),
    sa.Column('end_s', sa.Float(), nullable=False),
    sa.Column('words', sa.JSON(), nullable=False),
    sa.Column('interrupted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['interview_id'], ['interviews.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('interview_id', 'seq', name='uq_transcript_turns_interview_seq')
    )
    with op.batch_alter_table('transcript_turns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transcript_turns_interview_id'), ['interview_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('transcript_turns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcript_turns_interview_id'))

    op.drop_table('transcript_turns')
    with op.batch_alter_table('stage_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stage_events_interview_id'))

    op.drop_table('stage_events')
    op.drop_table('feedback')
