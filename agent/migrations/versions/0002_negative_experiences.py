"""The 负面体验 records of issue 15 (agent.experience.negative.models).

Revision ID: 0002negative
Revises: 0001agent
Create Date: 2026-12-04 01:40:00

"""
from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002negative'
down_revision: Union[str, Sequence[str], None] = '0001agent'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('agent_negative_experiences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('account_no', sa.String(length=12), nullable=True),
    sa.Column('cause', sa.String(length=32), nullable=False),
    sa.Column('causes', sa.JSON(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('remedy', sa.String(length=32), nullable=True),
    sa.Column('remedy_status', sa.String(length=16), nullable=True),
    sa.Column('remedy_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('remedy_answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_negative_experiences')),
    sa.UniqueConstraint('conversation_id', name=op.f('uq_agent_negative_experiences_conversation_id'))
    )
    op.create_index('ix_agent_negative_experiences_opened_at', 'agent_negative_experiences', ['opened_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_agent_negative_experiences_opened_at', table_name='agent_negative_experiences')
    op.drop_table('agent_negative_experiences')
